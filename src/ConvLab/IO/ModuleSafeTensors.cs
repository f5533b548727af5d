using ConvLab.NN;

namespace ConvLab.IO;

/// <summary>Saving and loading a <see cref="Module"/>'s state dict as a safetensors file (PyTorch key names).</summary>
public static class ModuleSafeTensorsExtensions
{
    /// <summary>
    /// Writes the module's parameters and buffers (PyTorch's <c>state_dict()</c>, e.g. <c>0.weight</c>,
    /// <c>1.running_mean</c>, int64 scalar <c>1.num_batches_tracked</c>) atomically to <paramref name="path"/>.
    /// </summary>
    public static void SaveSafeTensors(this Module model, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        SafeTensors.Save(path, model.StateDict(), metadata);
    }

    /// <summary>
    /// Copies the tensors of a safetensors file into the module via <see cref="Module.LoadStateDict"/>
    /// (values converted to each parameter's dtype). With <paramref name="strict"/>, missing or unexpected keys
    /// throw; shape mismatches always do. Returns the missing and unexpected keys.
    /// </summary>
    public static (IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected) LoadSafeTensors(this Module model, string path, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.LoadStateDict(SafeTensors.Load(path), strict);
    }
}
