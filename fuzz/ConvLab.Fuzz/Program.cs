using System.Diagnostics;
using ConvLab.Fuzz;
using ConvLab.Fuzz.Targets;

// convlab-fuzz: one coverage-guided target per ConvLab parser (driven by fuzz/run.sh).
//   list                              the targets
//   seeds OUTDIR [--shared DIR]       writes OUTDIR/TARGET/* seed files with the library's own writers
//   afl TARGET                        the afl-fuzz entry point (SharpFuzz persistent loop over stdin)
//   replay TARGET PATH...             runs files (or every file in folders) and prints outcome and allocation;
//                                     exit code 1 when any input is a finding
FuzzTarget[] targets =
[
    new IdxTarget(), new IdxGzipTarget(), new CifarTarget(), new ImageTarget(), new SafeTensorsTarget(),
    new CheckpointTarget(), new SpecTarget(), new ReferenceTarget(), new PthTarget(), new OnnxTarget(),
];

FuzzTarget Find(string name) => targets.FirstOrDefault(t => t.Name == name)
    ?? throw new ArgumentException($"unknown target '{name}' (targets: {string.Join(", ", targets.Select(t => t.Name))})");

string WorkDir() => Path.Combine(Environment.GetEnvironmentVariable("CONVLAB_FUZZ_WORK") ?? Path.GetTempPath(), $"convlab-fuzz-{Environment.ProcessId}");

try
{
    switch (args.FirstOrDefault())
    {
        case "list":
            foreach (var t in targets) Console.WriteLine(t.Name);
            return 0;
        case "seeds" when args.Length >= 2:
        {
            string? shared = args.Length >= 4 && args[2] == "--shared" ? args[3] : null;
            var scratch = Directory.CreateTempSubdirectory("convlab-fuzz-seeds-").FullName;
            var ctx = new SeedContext(scratch, shared);
            foreach (var t in targets)
            {
                var dir = Path.Combine(args[1], t.Name);
                Directory.CreateDirectory(dir);
                var harness = new Harness(t, WorkDir());
                int n = 0;
                foreach (var (name, bytes) in t.Seeds(ctx))
                {
                    // A seed must parse: a corpus of rejects would start the fuzzer outside the format.
                    var r = harness.Execute(bytes);
                    if (r.Outcome != "ok") throw new InvalidOperationException($"seed {t.Name}/{name} does not load: {r.Message}");
                    File.WriteAllBytes(Path.Combine(dir, name), bytes);
                    n++;
                }
                Console.WriteLine($"{t.Name}: {n} seeds");
            }
            Directory.Delete(scratch, true);
            return 0;
        }
        case "afl" when args.Length == 2:
        {
            var target = Find(args[1]);
            Harness? harness = null;
            SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
            {
                harness ??= new Harness(target, WorkDir());
                var ms = new MemoryStream();
                stream.CopyTo(ms);
                harness.Execute(ms.ToArray());
            });
            return 0;
        }
        case "replay" when args.Length >= 3:
        {
            var target = Find(args[1]);
            var harness = new Harness(target, WorkDir());
            var files = args.Skip(2).SelectMany<string, string>(p => Directory.Exists(p)
                ? Directory.EnumerateFiles(p).Where(f => !Path.GetFileName(f).StartsWith('.') && Path.GetFileName(f) != "README.txt").Order(StringComparer.Ordinal)
                : [p]).ToList();
            int findings = 0;
            // The input that came closest to its allocation budget, as a fraction of it.
            (double Fraction, long Allocated, long Input, string File) worst = (0, 0, 0, "");
            foreach (var f in files)
            {
                var bytes = File.ReadAllBytes(f);
                try
                {
                    var r = harness.Execute(bytes);
                    long budget = Harness.Budget(bytes.Length, r.Retained);
                    if ((double)r.Allocated / budget > worst.Fraction) worst = ((double)r.Allocated / budget, r.Allocated, bytes.Length, f);
                    if (files.Count <= 50)
                        Console.WriteLine($"{Path.GetFileName(f)}: {r.Outcome} {r.Elapsed.TotalMilliseconds:F1} ms, {bytes.Length} B in, {r.Allocated} B allocated (budget {budget}){(r.Message.Length > 0 ? ": " + r.Message : "")}");
                }
                catch (Exception e)
                {
                    findings++;
                    Console.WriteLine($"FINDING {f}: {e.GetType().FullName}: {e.Message}");
                    Console.WriteLine(string.Join('\n', (e.StackTrace ?? "").Split('\n').Take(8)));
                }
            }
            Console.WriteLine($"{target.Name}: {files.Count} inputs, {findings} findings; closest to the allocation budget: " +
                              $"{worst.Allocated} B for {worst.Input} B in ({100 * worst.Fraction:F1}% of its budget, {Path.GetFileName(worst.File)})");
            return findings == 0 ? 0 : 1;
        }
        default:
            Console.Error.WriteLine("usage: ConvLab.Fuzz list | seeds OUTDIR [--shared DIR] | afl TARGET | replay TARGET PATH...");
            return 2;
    }
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
finally
{
    var dir = WorkDir();
    if (Directory.Exists(dir)) Directory.Delete(dir, true);
}
