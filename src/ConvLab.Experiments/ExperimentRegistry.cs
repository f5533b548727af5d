using System.Reflection;

namespace ConvLab.Experiments;

/// <summary>Every <see cref="IExperiment"/> in this assembly, found by reflection (adding an experiment is adding a class).</summary>
public static class ExperimentRegistry
{
    private static readonly Lazy<IReadOnlyList<IExperiment>> Found = new(Discover);

    /// <summary>All experiments, sorted by name.</summary>
    public static IReadOnlyList<IExperiment> All => Found.Value;

    /// <summary>The experiment called <paramref name="name"/>; an <see cref="ArgumentException"/> listing the names otherwise.</summary>
    public static IExperiment Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return All.FirstOrDefault(e => e.Name == name)
            ?? throw new ArgumentException($"experiment: unknown experiment '{name}'; the experiments are: {string.Join(", ", All.Select(e => e.Name))}");
    }

    private static IReadOnlyList<IExperiment> Discover()
    {
        var list = typeof(ExperimentRegistry).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IExperiment).IsAssignableFrom(t) && t.GetConstructor(Type.EmptyTypes) != null)
            .Select(t => (IExperiment)Activator.CreateInstance(t)!)
            .OrderBy(e => e.Name, StringComparer.Ordinal)
            .ToList();
        var twice = list.GroupBy(e => e.Name).FirstOrDefault(g => g.Count() > 1);
        if (twice != null) throw new InvalidOperationException($"experiment: two experiments are named '{twice.Key}'");
        return list;
    }
}
