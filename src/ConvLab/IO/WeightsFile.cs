using ConvLab.IO.Torch;

namespace ConvLab.IO;

/// <summary>A weights file of either kind ConvLab reads: safetensors or a PyTorch <c>.pth</c>, told apart by content.</summary>
public static class WeightsFile
{
    /// <summary>
    /// The state dict in <paramref name="path"/>: a PyTorch file (zip or legacy pickle, see
    /// <see cref="TorchFile.LoadStateDict"/>) when it starts with a zip or pickle signature, else safetensors.
    /// </summary>
    public static OrderedDictionary<string, Tensor> Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return IsTorchFile(path) ? TorchFile.LoadStateDict(path) : SafeTensors.Load(path);
    }

    /// <summary>
    /// True when the file starts like a <c>torch.save</c> file: a zip local header, or a pickle PROTO opcode that is not
    /// the start of a safetensors header length (which is followed by four zero bytes and the header's '{').
    /// </summary>
    public static bool IsTorchFile(string path)
    {
        Span<byte> head = stackalloc byte[9];
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        int n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (n >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4) return true;
        bool safetensors = n == 9 && head[8] == (byte)'{' && head[4] == 0 && head[5] == 0 && head[6] == 0 && head[7] == 0;
        return !safetensors && n >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5;
    }
}
