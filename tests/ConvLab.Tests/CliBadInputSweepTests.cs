using System.CommandLine;
using System.Reflection;
using System.Text.RegularExpressions;
using Xunit;

namespace ConvLab.Tests;

/// <summary>Tests that swap the process's console writers run alone (nothing else may write to the console meanwhile).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CliInProcessCollection
{
    public const string Name = "CLI in process";
}

/// <summary>
/// The run folder and files the sweep points options at: a tiny trained run (for options checked after a run loads), a
/// junk file (wrong content where a file is expected), an existing directory (where a file is expected) and a missing path.
/// As root every file is readable, so "unreadable" is covered by the junk file's undecodable content.
/// </summary>
public sealed class BadInputFixture : IDisposable
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), $"convlab-sweep-{Guid.NewGuid():N}");
    public string Run => Path.Combine(Root, "run");
    public string Junk => Path.Combine(Root, "junk.bin");
    public string Dir => Path.Combine(Root, "a-directory");
    public string Missing => Path.Combine(Root, "no-such-path");
    public (int Code, string Out) TrainResult { get; }

    public BadInputFixture()
    {
        Directory.CreateDirectory(Dir);
        var junk = new byte[300];
        new Random(15).NextBytes(junk);
        File.WriteAllBytes(Junk, junk);
        TrainResult = CliBadInputSweepTests.InProcess(["train", "--data", "embedded", "--epochs", "1", "--limit-train", "32", "--limit-test", "16",
            "--batch-size", "16", "--out", Run]);
    }

    public void Dispose()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, true);
    }
}

/// <summary>
/// Issue 15, deliverable 5: every verb and option of <c>convlab</c> (listed from Program.cs) with invalid values — negative,
/// zero, NaN, huge, the wrong type, a missing file, a directory instead of a file, a file of junk — must give a one-line
/// error naming the option and a non-zero exit code, never a stack trace or a .NET type name. Runs the CLI's entry point in
/// this process (each separate process costs seconds on a loaded machine).
/// </summary>
[Collection(CliInProcessCollection.Name)]
public class CliBadInputSweepTests(BadInputFixture fx) : IClassFixture<BadInputFixture>
{
    private static readonly Assembly Cli = typeof(ConvLab.Cli.CliErrors).Assembly;

    /// <summary>Runs <c>convlab args</c> through the CLI's entry point with the console captured; returns the exit code and stdout + stderr.</summary>
    internal static (int Code, string Out) InProcess(string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var text = new StringWriter();
        Console.SetOut(text);
        Console.SetError(text);
        int threads = Threads.Count;
        try { return ((int)Cli.EntryPoint!.Invoke(null, [args])!, text.ToString()); }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
            Threads.Count = threads;
        }
    }

    /// <summary>
    /// Hand-written rows, "command | option or argument | arguments | text the error must contain" (default: the option).
    /// {R} is the fixture's run, {J} the junk file, {D} a directory, {M} a missing path, {T} a fresh path in the fixture.
    /// Wrong-type rows for every numeric, boolean and enum option are generated from the commands (see <see cref="Generated"/>).
    /// </summary>
    private static readonly string[] Rows =
    [
        "check-reference | dir | check-reference {M} | {M}",
        "check-reference | dir | check-reference {J} | {J}",
        "check-onnx | dir | check-onnx {M} | {M}",
        "check-onnx | dir | check-onnx {J} | {J}",
        "check-onnx | --filter | check-onnx {D} --filter |",

        "train | --data | train --data {M} |",
        "train | --data | train --data {J} |",
        "train | --epochs | train --epochs 0 |",
        "train | --epochs | train --epochs -3 |",
        "train | --epochs | train --epochs 99999999999 |",
        "train | --batch-size | train --batch-size 0 |",
        "train | --batch-size | train --batch-size -1 |",
        "train | --lr | train --lr abc |",
        "train | --lr | train --lr NaN |",
        "train | --lr | train --lr -0.1 |",
        "train | --lr | train --lr 0 |",
        "train | --lr | train --lr 1e999 |",
        "train | --optimizer | train --optimizer lbfgs |",
        "train | --model | train --data embedded --limit-train 8 --limit-test 8 --model nosuch |",
        "train | --schedule | train --schedule step |",
        "train | --out | train --data embedded --limit-train 8 --limit-test 8 --out {J} |",
        "train | --resume | train --resume {M} |",
        "train | --resume | train --resume {J} |",
        "train | --resume | train --resume {D} |",
        "train | --seed | train --seed -1 |",
        "train | --threads | train --threads 0 |",
        "train | --threads | train --threads -2 |",
        "train | --transfer | train --transfer bogus |",
        "train | --transfer | train --transfer bogus --weights {R} |",
        "train | --weights | train --data embedded --limit-train 8 --limit-test 8 --weights {M} |",
        "train | --weights | train --data embedded --limit-train 8 --limit-test 8 --weights {J} |",
        "train | --patience | train --patience -1 |",
        "train | --limit-train | train --limit-train 0 |",
        "train | --limit-test | train --limit-test 0 |",
        "train | --augment | train --augment --no-augment |",

        "evaluate | run | evaluate {M} | {M}",
        "evaluate | run | evaluate {J} | {J}",
        "evaluate | run | evaluate {D} | {D}",
        "evaluate | --data | evaluate {R} --data {M} |",
        "evaluate | --limit-test | evaluate {R} --limit-test 0 |",
        "evaluate | --batch-size | evaluate {R} --batch-size 0 |",
        "evaluate | --batch-size | evaluate {R} --batch-size -5 |",
        "evaluate | --threads | evaluate {R} --threads 0 |",

        "predict | run | predict {M} --index 0 | {M}",
        "predict | images | predict {R} {M} | {M}",
        "predict | images | predict {R} {J} | junk.bin",
        "predict | images | predict {R} {D} | {D}",
        "predict | --index | predict {R} --index -1 |",
        "predict | --index | predict {R} --index 99999 |",
        "predict | --top | predict {R} --index 0 --top 0 |",
        "predict | --data | predict {R} --index 0 --data {M} |",

        "compare | name | compare nosuch | nosuch",
        "compare | --format | compare --format xml |",

        "bench conv | --input | bench conv --input abc --out-channels 4 --kernel 3 |",
        "bench conv | --input | bench conv --input 1x0x8x8 --out-channels 4 --kernel 3 |",
        "bench conv | --out-channels | bench conv --input 1x3x8x8 --kernel 3 --out-channels 0 |",
        "bench conv | --kernel | bench conv --input 1x3x8x8 --out-channels 4 --kernel 0 |",
        "bench conv | --stride | bench conv --input 1x3x8x8 --out-channels 4 --kernel 3 --stride 0 |",
        "bench conv | --padding | bench conv --input 1x3x8x8 --out-channels 4 --kernel 3 --padding -1 |",
        "bench conv | --dilation | bench conv --input 1x3x8x8 --out-channels 4 --kernel 3 --dilation 0 |",
        "bench conv | --groups | bench conv --input 1x3x8x8 --out-channels 4 --kernel 3 --groups 2 |",
        "bench conv | --groups | bench conv --input 1x3x8x8 --out-channels 4 --kernel 3 --groups 0 |",
        "bench conv | --repeat | bench conv --input 1x3x8x8 --out-channels 4 --kernel 3 --repeat 0 |",
        "bench conv | --format | bench conv --input 1x3x8x8 --out-channels 4 --kernel 3 --format xml |",
        "bench conv | --threads | bench conv --input 1x3x8x8 --out-channels 4 --kernel 3 --threads 0 |",
        "bench nms | --boxes | bench nms --boxes 0 |",
        "bench nms | --boxes | bench nms --boxes abc |",
        "bench nms | --iou-threshold | bench nms --iou-threshold 2 |",
        "bench nms | --iou-threshold | bench nms --iou-threshold NaN |",
        "bench nms | --repeat | bench nms --repeat 0 |",
        "bench nms | --dump | bench nms --boxes 20 --repeat 1 --dump {J} |",

        "summary | model | summary nosuch | nosuch",
        "summary | --input | summary lenet5 --input abc |",
        "summary | --input | summary lenet5 --input 0x28x28 |",
        "summary | --batch | summary lenet5 --batch 0 |",
        "summary | --optimizer | summary lenet5 --optimizer bogus |",
        "summary | --classes | summary lenet5 --classes 0 |",
        "summary | --format | summary lenet5 --format xml |",
        "rf | model | rf nosuch | nosuch",
        "rf | --input | rf lenet5 --input 1x-2x3 |",
        "rf | --batch | rf lenet5 --batch -1 |",
        "rf | --optimizer | rf lenet5 --optimizer bogus |",
        "rf | --classes | rf lenet5 --classes -1 |",
        "rf | --format | rf lenet5 --format xml |",
        "memory | model | memory nosuch | nosuch",
        "memory | --input | memory lenet5 --input 1 |",
        "memory | --batch | memory lenet5 --batch 0 |",
        "memory | --optimizer | memory lenet5 --optimizer bogus |",
        "memory | --classes | memory lenet5 --classes 0 |",
        "memory | --format | memory lenet5 --format xml |",
        "models | --format | models --format xml |",

        "explain | run-or-model | explain {M} --index 0 | {M}",
        "explain | --image | explain {R} --image {M} |",
        "explain | --image | explain {R} --image {J} |",
        "explain | --image | explain {R} --image {D} |",
        "explain | --index | explain {R} --index -1 |",
        "explain | --index | explain {R} --index 99999 |",
        "explain | --method | explain {R} --index 0 --method bogus |",
        "explain | --target | explain {R} --index 0 --method saliency --target bogus |",
        "explain | --target | explain {R} --index 0 --method saliency --target 99 |",
        "explain | --layer | explain {R} --index 0 --method gradcam --layer nosuch |",
        "explain | --box | explain {R} --index 0 --method saliency --box 1,2 |",
        "explain | --metrics | explain {R} --index 0 --method saliency --metrics bogus |",
        "explain | --out | explain {R} --index 0 --method saliency --out {J} |",
        "explain | --format | explain {R} --index 0 --format xml |",
        "explain | --weights | explain simple_cnn --index 0 --weights {M} |",
        "explain | --weights | explain simple_cnn --index 0 --weights {J} |",
        "explain | --input | explain simple_cnn --index 0 --weights {R}/model.safetensors --input abc |",
        "explain | --classes | explain simple_cnn --index 0 --weights {R}/model.safetensors --classes 0 |",
        "explain | --data | explain {R} --index 0 --data {M} |",
        "explain | --steps | explain {R} --index 0 --steps 0 |",
        "explain | --samples | explain {R} --index 0 --samples -1 |",
        "explain | --window | explain {R} --index 0 --window 0 |",
        "explain | --window | explain {R} --index 0 --method occlusion --window 99999 |",
        "explain | --stride | explain {R} --index 0 --stride 0 |",
        "explain | --pixels-per-step | explain {R} --index 0 --pixels-per-step 0 |",
        "explain | --tolerance | explain {R} --index 0 --tolerance -1 |",
        "explain | --tolerance | explain {R} --index 0 --tolerance NaN |",
        "explain | --repeat | explain {R} --index 0 --repeat -1 |",
        "explain | --repeat | explain {R} --index 0 --repeat 5000 |",
        "explain | --threads | explain {R} --index 0 --threads 0 |",

        "experiment | name | experiment nosuch | nosuch",
        "experiment | --out | experiment filters --quick --out {J} |",
        "experiment | --threads | experiment filters --quick --threads 0 |",
        "experiment | --image | experiment filters --quick --image {M} |",
        "experiment | --image | experiment filters --quick --image {J} |",
        "experiment | --data | experiment transfer --quick --data {M} |",
        "experiment | --run | experiment filters --quick --run {M} --out {T} |",
        "experiment | --budget | experiment memory --quick --budget abc |",
        "experiment | --set | experiment filters --quick --set novalue |",

        "convert | input | convert {M} {T}.safetensors | {M}",
        "convert | input | convert {J} {T}.safetensors | junk.bin",
        "convert | output | convert lenet5 {T}.txt | .txt",
        "convert | output | convert lenet5 {D}.safetensors/x/y.safetensors | y.safetensors",
        "convert | --classes | convert lenet5 {T}.safetensors --classes 0 |",
        "convert | --repeat | convert lenet5 {T}.safetensors --repeat 0 |",

        "export | model | export nosuch --onnx {T}.onnx | nosuch",
        "export | --onnx | export lenet5 --onnx {D} |",
        "export | --weights | export lenet5 --onnx {T}.onnx --weights {M} |",
        "export | --weights | export lenet5 --onnx {T}.onnx --weights {J} |",
        "export | --opset | export lenet5 --onnx {T}.onnx --opset 5 |",
        "export | --input | export lenet5 --onnx {T}.onnx --input abc |",
        "export | --classes | export lenet5 --onnx {T}.onnx --classes 0 |",

        "import | file | import {M} --out {T} | {M}",
        "import | file | import {J} --out {T} | {J}",
        "import | --out | import {J} --out |",

        "detect train | --data | detect train --data {M} |",
        "detect train | --epochs | detect train --quick --epochs 0 |",
        "detect train | --batch-size | detect train --quick --batch-size 0 |",
        "detect train | --lr | detect train --quick --lr NaN |",
        "detect train | --width | detect train --quick --width 0 |",
        "detect train | --image-size | detect train --quick --image-size 33 |",
        "detect train | --train-sizes | detect train --quick --train-sizes abc |",
        "detect train | --train-sizes | detect train --quick --train-sizes 31 |",
        "detect train | --train-images | detect train --quick --train-images 0 |",
        "detect train | --val-images | detect train --quick --val-images 0 |",
        "detect train | --threads | detect train --quick --threads 0 |",
        "detect train | --resume | detect train --resume {M} |",
        "detect train | --resume | detect train --resume {J} |",
        "detect train | --resume | detect train --resume {R} |",
        "detect train | --out | detect train --quick --out {J} |",
        "detect predict | run | detect predict {M} --image {J} | {M}",
        "detect predict | --image | detect predict {R} --image {M} |",
        "detect predict | --score | detect predict {R} --image {J} --score 2 |",
        "detect predict | --iou | detect predict {R} --image {J} --iou NaN |",
        "detect predict | --out | detect predict {M} --image {J} --out |",
        "detect eval | run | detect eval {M} | {M}",
        "detect eval | run | detect eval {R} | {R}",
        "detect eval | --data | detect eval {R} --data {M} |",

        "anchors | dataset | anchors {M} | {M}",
        "anchors | dataset | anchors {J} | {J}",
        "anchors | -k | anchors synthetic -k 0 |",
        "anchors | --k-max | anchors synthetic -k 3 --k-max 2 |",
        "anchors | --image-size | anchors synthetic --image-size 0 |",
        "anchors | --images | anchors synthetic --images 0 |",
        "anchors | --images | anchors synthetic --images 99999999999 |",
        "anchors | --out | anchors synthetic --images 20 -k 2 --k-max 2 --out {D} |",

        "conv | --input | conv --input [1,2 --weight [1] |",
        "conv | --weight | conv --input [1,2,3] --weight [[1],[2,3]] |",
        "conv | --weight | conv --input [1,2,3] |",
        "conv | --stride | conv --input [1,2,3] --weight [1] --stride 0 |",
        "conv | --padding | conv --input [1,2,3] --weight [1] --padding -1 |",
        "conv | --dilation | conv --input [1,2,3] --weight [1] --dilation 0 |",
        "conv | --mode | conv --input [1,2,3] --weight [1] --mode bogus |",
        "conv | --output-padding | conv --input [1,2,3] --weight [1] --transposed --output-padding -1 |",
        "conv | --format | conv --input [1,2,3] --weight [1] --format xml |",
        "conv | --output | conv --input [1,2,3] --solve-filter --kernel 2 |",
        "conv | --kernel | conv --input [1,2,3] --solve-filter --output [1,2] |",
        "conv | --kernel | conv --input [1,2,3] --solve-filter --output [1,2] --kernel 0 |",
        "pool | --input | pool --input abc |",
        "pool | --kernel | pool --input [1,2,3,4] --kernel 0 |",
        "pool | --stride | pool --input [1,2,3,4] --stride 0 |",
        "pool | --padding | pool --input [1,2,3,4] --padding -1 |",
        "pool | --type | pool --input [1,2,3,4] --type median |",
        "pool | --grad | pool --input [1,2,3,4] --grad [1,2,3,4,5] |",
        "pool | --format | pool --input [1,2,3,4] --format xml |",
        "filter | image | filter {M} --kernel sobel-x --out {T}.png | {M}",
        "filter | image | filter {J} --kernel sobel-x --out {T}.png | junk.bin",
        "filter | --kernel | filter --kernel bogus --out {T}.png |",
        "filter | --mode | filter --kernel sobel-x --mode bogus --out {T}.png |",
        "filter | --out | filter --kernel sobel-x --out {D} |",
        "filter | --raw | filter --kernel sobel-x --out {T}.png --raw {D} |",
    ];

    private static IEnumerable<Command> AllCommands(Command c)
    {
        yield return c;
        foreach (var s in c.Subcommands)
            foreach (var d in AllCommands(s)) yield return d;
    }

    private static string PathOf(Command c, Command root) => c == root ? "" : string.Join(" ", Ancestry(c, root).Select(a => a.Name));

    private static List<Command> Ancestry(Command c, Command root)
    {
        var list = new List<Command>();
        void Walk(Command at, List<Command> trail)
        {
            if (at == c) { list = [.. trail]; return; }
            foreach (var s in at.Subcommands) Walk(s, [.. trail, s]);
        }
        Walk(root, []);
        return list;
    }

    /// <summary>The verbs of Program.cs (every <c>XCommand.Create()</c> it adds), built as the CLI builds them.</summary>
    private static RootCommand ProgramCommands()
    {
        var program = File.ReadAllText(Path.Combine(TestUtil.RepoRoot, "src", "ConvLab.Cli", "Program.cs"));
        var names = Regex.Matches(program, @"root\.Subcommands\.Add\((\w+)\.Create\(\)\)").Select(m => m.Groups[1].Value).ToList();
        Assert.True(names.Count >= 20, $"Program.cs lists {names.Count} commands");
        var root = new RootCommand();
        foreach (var n in names)
        {
            var type = Cli.GetType("ConvLab.Cli." + n) ?? throw new InvalidOperationException($"no type ConvLab.Cli.{n}");
            root.Subcommands.Add((Command)type.GetMethod("Create", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)!.Invoke(null, null)!);
        }
        return root;
    }

    private static IEnumerable<Option> OwnOptions(Command c) => c.Options.Where(o => o.Name is not ("--help" or "--version") && !o.Aliases.Contains("-h"));

    /// <summary>Wrong-type rows for every numeric, boolean or enum option: command path, option, arguments.</summary>
    public static IEnumerable<object[]> Generated()
    {
        var root = ProgramCommands();
        foreach (var c in AllCommands(root).Where(c => c != root))
        {
            string path = PathOf(c, root);
            // Required arguments and options get a placeholder, so the bad value is the only problem.
            var baseArgs = path.Split(' ').Concat(c.Arguments.Where(a => a.Arity.MinimumNumberOfValues > 0).Select(_ => "x"))
                .Concat(OwnOptions(c).Where(o => o.Required).SelectMany(o => new[] { o.Name, o.ValueType == typeof(int) ? "4" : "x" })).ToList();
            foreach (var o in OwnOptions(c).Where(o => !o.Required))
            {
                var t = Nullable.GetUnderlyingType(o.ValueType) ?? o.ValueType;
                t = t.IsArray ? t.GetElementType()! : t;
                string? bad = t == typeof(bool) ? $"{o.Name}=maybe"
                    : t == typeof(int) || t == typeof(long) || t == typeof(ulong) || t == typeof(double) || t.IsEnum ? "abc" : null;
                if (bad == null) continue;
                yield return [path, o.Name, string.Join(' ', t == typeof(bool) ? [.. baseArgs, bad] : baseArgs.Concat([o.Name, bad]))];
                if (t == typeof(int) || t == typeof(ulong)) yield return [path, o.Name, string.Join(' ', baseArgs.Concat([o.Name, "99999999999999999999"]))];
            }
        }
    }

    public static IEnumerable<object[]> HandRows() => Rows.Select(r => r.Split('|', StringSplitOptions.TrimEntries)).Select(p => new object[] { p[0], p[1], p[2], p[3] });

    private string Fill(string text, int row) => text.Replace("{R}", fx.Run).Replace("{J}", fx.Junk).Replace("{D}", fx.Dir).Replace("{M}", fx.Missing)
        .Replace("{T}", Path.Combine(fx.Root, $"out-{row}"));

    /// <summary>
    /// The error is the last line and names <paramref name="expect"/>; with <paramref name="onlyLine"/> (parse errors, caught
    /// before any work) it is the only line, otherwise progress lines printed before the failure (data: ..., the experiment's
    /// title) may precede it. No line may show a stack trace, an exception or a .NET type name, nor the help screen.
    /// </summary>
    private static void AssertOneLineNaming(string args, (int Code, string Out) r, string expect, bool onlyLine)
    {
        var text = r.Out.Trim();
        Assert.True(r.Code != 0, $"convlab {args}: exit code 0\n{text}");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 1 && (!onlyLine || lines.Length == 1), $"convlab {args}: expected one line, got {lines.Length}:\n{text}");
        Assert.True(lines[^1].Contains(expect, StringComparison.Ordinal), $"convlab {args}: the error (last line) does not name '{expect}':\n{text}");
        foreach (var bad in new[] { "   at ", "Exception", "System.", "`1", "Unhandled", "Usage:" })
            Assert.False(text.Contains(bad, StringComparison.Ordinal), $"convlab {args}: the output shows '{bad}':\n{text}");
    }

    [Fact]
    public void TheFixtureRunTrained() => Assert.True(fx.TrainResult.Code == 0, fx.TrainResult.Out);

    [Theory]
    [MemberData(nameof(HandRows))]
    public void BadValueGivesOneLineNamingIt(string command, string symbol, string args, string expect)
    {
        _ = command;
        int row = Array.FindIndex(Rows, r => r.Contains(args, StringComparison.Ordinal));
        string filled = Fill(args, row);
        AssertOneLineNaming(filled, InProcess(filled.Split(' ', StringSplitOptions.RemoveEmptyEntries)), Fill(expect.Length > 0 ? expect : symbol, row), onlyLine: false);
    }

    [Theory]
    [MemberData(nameof(Generated))]
    public void WrongTypeGivesOneLineNamingTheOptionWithoutATypeName(string command, string option, string args)
    {
        _ = command;
        AssertOneLineNaming(args, InProcess(args.Split(' ')), option, onlyLine: true);
    }

    [Fact]
    public void LrAbcNamesTheOptionAndTheExpectedKindInWords()
    {
        var (code, text) = InProcess(["train", "--lr", "abc"]);
        Assert.Equal(1, code);
        Assert.Equal("train: --lr: 'abc' is not a number (see convlab train --help)", text.Trim());
    }

    /// <summary>Every command of Program.cs and every one of its options and arguments has at least one row.</summary>
    [Fact]
    public void TheSweepCoversEveryVerbAndOption()
    {
        var root = ProgramCommands();
        var covered = HandRows().Concat(Generated()).Select(r => ((string)r[0], (string)r[1])).ToHashSet();
        var missing = new List<string>();
        foreach (var c in AllCommands(root).Where(c => c != root))
        {
            string path = PathOf(c, root);
            if (c.Subcommands.Count > 0 && c.Options.Count == 0 && c.Arguments.Count == 0) continue; // a group: its verbs are checked
            var symbols = OwnOptions(c).Select(o => o.Name).Concat(c.Arguments.Select(a => a.Name)).ToList();
            if (symbols.Count == 0 && !covered.Any(k => k.Item1 == path)) missing.Add($"{path} (no row at all)");
            missing.AddRange(symbols.Where(s => !covered.Contains((path, s))).Select(s => $"{path} {s}"));
        }
        Assert.True(missing.Count == 0, "no bad-input row for: " + string.Join(", ", missing));
    }
}
