using System.CommandLine;
using System.Globalization;
using ConvLab.Training;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary><c>convlab evaluate RUN</c>: test-set metrics of a saved run (accuracy, top-5, loss, per-class accuracy, confusion matrix).</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var run = new Argument<string>("run") { Description = "Run folder written by convlab train" };
        var data = new Option<string?>("--data") { Description = "Test data to use instead of the run's own (an IDX folder or 'embedded')" };
        var limit = new Option<int?>("--limit-test") { Description = "Use only the first N test images" };
        var batch = new Option<int>("--batch-size") { Description = "Evaluation batch size", DefaultValueFactory = _ => 256 };
        var threads = new Option<int?>("--threads") { Description = "Threads for the kernels" };
        var cmd = new Command("evaluate", "Evaluate a saved run on its test set and print the metrics and confusion matrix.") { run, data, limit, batch, threads };
        cmd.SetAction(pr => Run(pr.GetValue(run)!, pr.GetValue(data), pr.GetValue(limit), pr.GetValue(batch), pr.GetValue(threads), Console.Out));
        return cmd;
    }

    public static int Run(string runDir, string? data, int? limit, int batchSize, int? threads, TextWriter output)
    {
        var console = TrainCommand.Console(output);
        try
        {
            if (threads is int t) Threads.Count = t >= 1 ? t : throw new ArgumentException($"evaluate: --threads must be at least 1, got {t}");
            if (batchSize < 1 || limit is < 1) throw new ArgumentException("evaluate: --batch-size and --limit-test must be at least 1");
            var metrics = RunFolder.ReadMetrics(runDir);
            var model = RunFolder.LoadModel(runDir, metrics);
            var test = TrainDataSource.Load(TrainDataSource.Resolve(data ?? metrics.DataSource), limitTest: limit, trainSplit: false).Test;
            var names = metrics.ClassNames;
            console.MarkupLineInterpolated($"evaluating {metrics.Model} of {runDir} on {test.Count:N0} test images from {data ?? metrics.DataSource}");
            var m = Trainer.Evaluate(model, test, names.Length, batchSize);
            console.MarkupLineInterpolated($"[bold]test accuracy {m.Top1:P2}[/], top-5 {m.Top5:P2}, loss {m.Loss:F4}");
            var table = new Table().Title("confusion matrix (rows: true class, columns: predicted)").AddColumn("true \\ predicted");
            for (int c = 0; c < names.Length; c++) table.AddColumn(new TableColumn(c.ToString(CultureInfo.InvariantCulture)).RightAligned());
            table.AddColumn(new TableColumn("accuracy").RightAligned());
            var per = m.PerClassAccuracy();
            for (int r = 0; r < names.Length; r++)
                table.AddRow([Markup.Escape($"{r} {names[r]}"), .. Enumerable.Range(0, names.Length).Select(c =>
                    r == c ? $"[bold]{m.Confusion(r, c)}[/]" : m.Confusion(r, c).ToString(CultureInfo.InvariantCulture)),
                    double.IsNaN(per[r]) ? "-" : per[r].ToString("P1", CultureInfo.InvariantCulture)]);
            console.Write(table);
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException)
        {
            return TrainCommand.Fail(output, e.Message);
        }
    }
}
