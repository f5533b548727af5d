using ConvLab.Onnx.Proto;
using Google.Protobuf;

namespace ConvLab.Onnx;

/// <summary>Reads ONNX protobuf files (models and backend-test tensors) with errors that name the file.</summary>
internal static class OnnxFile
{
    /// <summary>Largest file read (protobuf's own 2 GiB limit).</summary>
    private const long MaxBytes = int.MaxValue;

    private static byte[] ReadBytes(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: file not found", path);
        if (info.Length > MaxBytes) throw new InvalidDataException($"{path}: {info.Length} bytes is larger than protobuf's 2 GiB limit");
        return File.ReadAllBytes(path);
    }

    /// <summary>
    /// Parses a model. Protobuf checks every length prefix against the bytes left, so a truncated or corrupted file
    /// fails here (or in the graph checks of the importer) instead of allocating what it claims.
    /// </summary>
    internal static ModelProto ReadModel(string path)
    {
        var bytes = ReadBytes(path);
        ModelProto m;
        try { m = ModelProto.Parser.ParseFrom(bytes); }
        catch (InvalidProtocolBufferException e) { throw new InvalidDataException($"{path}: not a valid ONNX model ({e.Message})", e); }
        if (m.Graph == null) throw new InvalidDataException($"{path}: not an ONNX model (no graph)");
        return m;
    }

    /// <summary>Reads one <c>TensorProto</c> file (<c>input_0.pb</c> of a backend test).</summary>
    internal static Tensor ReadTensor(string path)
    {
        var bytes = ReadBytes(path);
        TensorProto t;
        try { t = TensorProto.Parser.ParseFrom(bytes); }
        catch (InvalidProtocolBufferException e) { throw new InvalidDataException($"{path}: not a valid ONNX tensor ({e.Message})", e); }
        return OnnxTensor.ToTensor(t, path);
    }

    /// <summary>Writes a model atomically.</summary>
    internal static void WriteModel(string path, ModelProto model) =>
        ConvLab.IO.AtomicFile.Write(path, s => model.WriteTo(s));
}
