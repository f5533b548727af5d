using System.Globalization;
using ConvLab.Training;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary>
/// Renders training progress: a Spectre.Console live progress bar per epoch (step, loss, accuracy, images/s, ETA of
/// the whole run) on an interactive terminal, one line per epoch otherwise (pipes, logs, tests).
/// </summary>
internal sealed class TrainProgress(IAnsiConsole console, ProgressContext? context, string score = "acc", string test = "test", string testScore = "acc") : ITrainingProgress
{
    private ProgressTask? _task;
    private int _steps, _epochs, _epoch;
    private DateTime _lastDraw;
    private long _done;
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();

    /// <summary>Runs <paramref name="train"/> with progress drawn on <paramref name="console"/>; <paramref name="score"/> and
    /// <paramref name="test"/>/<paramref name="testScore"/> name the objective's score, its validation and validation score (detection: recall, val, mAP50).</summary>
    public static T Run<T>(IAnsiConsole console, Func<ITrainingProgress, T> train, string score = "acc", string test = "test", string testScore = "acc")
    {
        if (!console.Profile.Capabilities.Interactive) return train(new TrainProgress(console, null, score, test, testScore));
        return console.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 20 }, new PercentageColumn())
            .Start(ctx => train(new TrainProgress(console, ctx, score, test, testScore)));
    }

    public void EpochStarted(int epoch, int epochs, int steps)
    {
        (_epoch, _epochs, _steps) = (epoch, epochs, steps);
        _task = context?.AddTask(Label(epoch) + " starting", maxValue: steps);
    }

    public void StepCompleted(StepProgress p)
    {
        if (_task == null) return;
        _task.Value = p.Step;
        _done++;
        // Formatting the description every step of a fast model costs more than the redraw is worth.
        if (p.Step != p.Steps && (DateTime.UtcNow - _lastDraw).TotalMilliseconds < 200) return;
        _lastDraw = DateTime.UtcNow;
        long left = (long)(_steps - p.Step) + (long)(_epochs - _epoch) * _steps;
        var eta = TimeSpan.FromSeconds(_clock.Elapsed.TotalSeconds / _done * left);
        _task.Description = Inv($"{Label(p.Epoch)} step {p.Step}/{p.Steps} loss {p.Loss:F3} {score} {p.Accuracy:P1} {p.ImagesPerSecond:N0} img/s ETA {eta:hh\\:mm\\:ss}");
    }

    public void Evaluating(int epoch)
    {
        if (_task != null) _task.Description = Label(epoch) + $" evaluating on the {test} set";
    }

    public void EpochCompleted(EpochRecord r)
    {
        if (_task != null)
        {
            _task.Description = Inv($"{Label(r.Epoch)} train {r.TrainLoss:F3} / {r.TrainAccuracy:P1}, {test} {r.TestLoss:F3} / {r.TestAccuracy:P1}, {r.Seconds:F0} s");
            _task.Value = _task.MaxValue;
            _task.StopTask();
        }
        else console.WriteLine(Inv($"{Label(r.Epoch)} train loss {r.TrainLoss:F4} {score} {r.TrainAccuracy:P2} | {test} loss {r.TestLoss:F4} {testScore} {r.TestAccuracy:P2} | {r.Seconds:F1} s, {r.ImagesPerSecond:N0} img/s"));
    }

    private string Label(int epoch) => Inv($"epoch {epoch}/{_epochs}");

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
