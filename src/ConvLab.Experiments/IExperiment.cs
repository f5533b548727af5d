namespace ConvLab.Experiments;

/// <summary>
/// One experiment: <c>convlab experiment NAME</c>. <see cref="Run"/> computes everything from the context's seed and
/// settings, writes figures through <see cref="ExperimentContext.Figure"/>, puts its numbers in
/// <see cref="ExperimentContext.Results"/> and states what they show in <see cref="ExperimentContext.Report"/>, every
/// number in a sentence taken from this run. Implementations need a public parameterless constructor: the
/// <see cref="ExperimentRegistry"/> finds them by reflection.
/// </summary>
public interface IExperiment
{
    /// <summary>The name typed on the command line (lower case, words joined by '-').</summary>
    string Name { get; }

    /// <summary>One line: what the experiment shows.</summary>
    string Description { get; }

    /// <summary>Runs the experiment into <paramref name="context"/>'s run folder.</summary>
    void Run(ExperimentContext context);
}
