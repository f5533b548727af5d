using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ConvLab.Bench;

/// <summary>Text rows, the Markdown table and the JSON document.</summary>
static class Report
{
    public const string Legend =
        "ms: median per call [min-max over the repeats]; ratio = ConvLab time / TorchSharp time (< 1: ConvLab faster); " +
        "GFLOP/s and %peak of ConvLab | TorchSharp; err: max |ConvLab - TorchSharp| / max |TorchSharp| (training: worst parameter gradient after one step).";

    private static string F(double v, string f) => v.ToString(f, CultureInfo.InvariantCulture);

    public static string Row(Result r, double peak)
    {
        string Ms(double[] s, double med) => $"{F(med, "F2")} [{F(s.Min() * 1e3, "F2")}-{F(s.Max() * 1e3, "F2")}]";
        string img = r.Case.Images > 0 ? $"  img/s {F(r.Case.Images / (r.ConvLabMs / 1e3), "F1")} | {F(r.Case.Images / (r.PeerMs / 1e3), "F1")}" : "";
        return $"{r.Case.Name,-46} ConvLab {Ms(r.ConvLabSeconds, r.ConvLabMs),-26} {r.Case.PeerName} {Ms(r.PeerSeconds, r.PeerMs),-26} " +
               $"ratio {F(r.Ratio, "F2"),5}  GFLOP/s {F(r.GFlops, "F1"),6} | {F(r.PeerGFlops, "F1"),6}  " +
               $"%peak {F(100 * r.GFlops / peak, "F0"),3} | {F(100 * r.PeerGFlops / peak, "F0"),3}  err {(r.RelErr is double e ? F(e, "E1") : "-")}{img}" +
               (r.Case.Target is Target t ? $"  target {t}: {t.Status(r, peak)}" : "");
    }

    /// <summary>The results as a Markdown table (for BENCHMARKS.md).</summary>
    public static string Markdown(List<Result> results, double peak)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("| case | ConvLab ms [min-max] | TorchSharp ms [min-max] | ratio | speed vs TS | GFLOP/s CL / TS | % peak CL / TS | img/s CL / TS | rel err | target | status |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            string Ms(double[] s, double med) => $"{F(med, "F2")} [{F(s.Min() * 1e3, "F2")}-{F(s.Max() * 1e3, "F2")}]";
            string img = r.Case.Images > 0 ? $"{F(r.Case.Images / (r.ConvLabMs / 1e3), "F1")} / {F(r.Case.Images / (r.PeerMs / 1e3), "F1")}" : "";
            var t = r.Case.Target;
            sb.AppendLine($"| {r.Case.Name} | {Ms(r.ConvLabSeconds, r.ConvLabMs)} | {Ms(r.PeerSeconds, r.PeerMs)} | {F(r.Ratio, "F2")} | {F(1 / r.Ratio, "F2")}x | " +
                          $"{F(r.GFlops, "F1")} / {F(r.PeerGFlops, "F1")} | {F(100 * r.GFlops / peak, "F0")} / {F(100 * r.PeerGFlops / peak, "F0")} | {img} | " +
                          $"{(r.RelErr is double e ? F(e, "E1") : "")} | {t?.ToString() ?? ""} | {(t is null ? "" : t.Status(r, peak))} |");
        }
        return sb.ToString();
    }

    public static string Json(List<Result> results, double peak, string cpu, int threads, int repeats, string torchVersion, string loadStart, string loadEnd)
    {
        static double R(double v, int digits) => Math.Round(v, digits);
        var cases = new JsonArray();
        foreach (var r in results)
        {
            var o = new JsonObject
            {
                ["suite"] = r.Case.Suite,
                ["name"] = r.Case.Name,
                ["convlab_ms"] = R(r.ConvLabMs, 4),
                ["peer_ms"] = R(r.PeerMs, 4),
                ["ratio"] = R(r.Ratio, 4),
                ["gflops"] = R(r.GFlops, 2),
                ["peak_fraction"] = R(r.GFlops / peak, 4),
                ["peer_gflops"] = R(r.PeerGFlops, 2),
                ["peer_peak_fraction"] = R(r.PeerGFlops / peak, 4),
                ["convlab_min_ms"] = R(r.ConvLabSeconds.Min() * 1e3, 4),
                ["convlab_max_ms"] = R(r.ConvLabSeconds.Max() * 1e3, 4),
                ["peer_min_ms"] = R(r.PeerSeconds.Min() * 1e3, 4),
                ["peer_max_ms"] = R(r.PeerSeconds.Max() * 1e3, 4),
                ["flops"] = r.Case.Flops,
                ["calls_per_sample"] = r.CallsPerSample,
                ["rel_err"] = r.RelErr is double e ? e : null,
            };
            if (r.Case.Target is Target t)
            {
                o["target"] = t.ToString();
                o["target_met"] = t.Met(r, peak);
            }
            if (r.Case.Images > 0)
            {
                o["images_per_s"] = R(r.Case.Images / (r.ConvLabMs / 1e3), 2);
                o["peer_images_per_s"] = R(r.Case.Images / (r.PeerMs / 1e3), 2);
            }
            cases.Add(o);
        }
        var doc = new JsonObject
        {
            ["machine"] = new JsonObject
            {
                ["cpu"] = cpu,
                ["logical_cpus"] = Environment.ProcessorCount,
                ["os"] = RuntimeInformation.OSDescription,
                ["dotnet"] = Environment.Version.ToString(),
            },
            ["loadavg_start"] = loadStart,
            ["loadavg_end"] = loadEnd,
            ["threads"] = threads,
            ["repeats"] = repeats,
            ["peak_gflops"] = R(peak, 2),
            ["peak_isa"] = FmaPeak.Isa,
            ["peer"] = $"TorchSharp-cpu {torchVersion}",
            ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["cases"] = cases,
        };
        return doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
