using System.Globalization;
using System.Text.Json;
using ConvLab.IO;

namespace ConvLab.Explain;

/// <summary>
/// Saves raw (unnormalised) attribution maps as one <c>.safetensors</c> file, so methods can be compared
/// quantitatively outside ConvLab (e.g. <c>safetensors.torch.load_file</c>).
/// </summary>
public static class AttributionFile
{
    /// <summary>
    /// Writes each attribution's <see cref="Attribution.Map"/> as float32 under its method name (a second attribution of
    /// the same method gets <c>_2</c>, ...) and <see cref="Attribution.Upsampled"/> under <c>NAME.upsampled</c>; the
    /// metadata entry of each name holds a JSON object with <c>targets</c>, <c>delta</c> and <c>layer</c>. Atomic.
    /// </summary>
    public static IReadOnlyList<string> Save(string path, IReadOnlyList<Attribution> attributions)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(attributions);
        var tensors = new Dictionary<string, Tensor>();
        var metadata = new Dictionary<string, string>();
        var names = new List<string>();
        foreach (var a in attributions)
        {
            ArgumentNullException.ThrowIfNull(a);
            string name = a.Method;
            for (int k = 2; tensors.ContainsKey(name); k++) name = $"{a.Method}_{k.ToString(CultureInfo.InvariantCulture)}";
            tensors[name] = a.Map.Detach().To(DType.Float32);
            if (a.Upsampled != null) tensors[name + ".upsampled"] = a.Upsampled.Detach().To(DType.Float32);
            metadata[name] = JsonSerializer.Serialize(new Dictionary<string, object?> { ["targets"] = a.Targets, ["delta"] = a.Delta, ["layer"] = a.Layer });
            names.Add(name);
        }
        SafeTensors.Save(path, tensors, metadata);
        return names;
    }
}
