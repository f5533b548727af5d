using ConvLab.NN;

namespace ConvLab.IO.Torch;

/// <summary>Saving and loading a <see cref="Module"/>'s state dict as a PyTorch <c>.pth</c> file.</summary>
public static class ModuleTorchExtensions
{
    /// <summary>
    /// Writes the module's state dict (PyTorch key names) atomically as <c>torch.save(model.state_dict())</c> would;
    /// <c>model.load_state_dict(torch.load(path, weights_only=True))</c> restores it in the matching torchvision model.
    /// </summary>
    public static void SavePth(this Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        TorchFile.SaveStateDict(path, model.StateDict());
    }

    /// <summary>
    /// Copies the tensors of a <c>.pth</c> state dict or training checkpoint (see <see cref="TorchFile.LoadStateDict"/>)
    /// into the module via <see cref="Module.LoadStateDict"/>. With <paramref name="strict"/>, missing or unexpected
    /// keys throw; shape mismatches always do. Returns the missing and unexpected keys.
    /// </summary>
    public static (IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected) LoadPth(this Module model, string path, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.LoadStateDict(TorchFile.LoadStateDict(path), strict);
    }
}
