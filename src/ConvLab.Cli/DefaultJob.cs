using System.Globalization;
using ConvLab.Models;
using ConvLab.NN;
using ConvLab.NN.Functional;
using Spectre.Console;

namespace ConvLab.Cli;

/// <summary>
/// What <c>convlab</c> does with no arguments until the training job lands: the layer-by-layer summary
/// of LeNet-5 on a 1x28x28 input, then one forward/backward pass on a random batch.
/// </summary>
internal static class DefaultJob
{
    public static int Run(TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        var model = new LeNet5(generator: new Generator(0));
        const int batch = 16;
        var x = Tensor.Randn([batch, 1, 28, 28], new Generator(1));

        console.MarkupLine("[bold]LeNet-5[/] on input [[N, 1, 28, 28]] (N = 16)");
        var table = new Table().AddColumns("layer", "type", "output shape", "params");
        long total = 0;
        Tensor h = x;
        using (new Autograd.NoGrad())
            foreach (var (name, layer) in Leaves(model, ""))
            {
                h = layer.Forward(h);
                long p = layer.ParameterCount();
                total += p;
                table.AddRow(Markup.Escape(name), layer.GetType().Name, Markup.Escape(Shape(h)), p.ToString("N0", CultureInfo.InvariantCulture));
            }
        table.AddRow("", "[bold]total[/]", "", total.ToString("N0", CultureInfo.InvariantCulture));
        console.Write(table);

        var target = Tensor.RandInt(0, 10, [batch], new Generator(2));
        var logits = model.Forward(x);
        var loss = F.CrossEntropy(logits, target);
        loss.Backward();
        double gradNorm = Math.Sqrt(model.Parameters().Sum(p => p.Grad!.Pow(2).Sum().Item()));
        int withGrad = model.Parameters().Count(p => p.Grad != null);
        console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"forward: logits {Markup.Escape(Shape(logits))}, cross-entropy loss {loss.Item():F4} (ln 10 = {Math.Log(10):F4} for a guess)"));
        console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"backward: gradients for {withGrad} of {model.Parameters().Count()} parameter tensors, global gradient norm {gradNorm:F4}"));
        return 0;
    }

    private static string Shape(Tensor t) => "[" + string.Join(", ", t.Shape.ToArray()) + "]";

    /// <summary>Leaf layers of nested Sequentials, with their state-dict paths.</summary>
    private static IEnumerable<(string, Module)> Leaves(Module m, string prefix)
    {
        foreach (var (name, child) in m.NamedChildren())
        {
            string path = prefix.Length == 0 ? name : prefix + "." + name;
            if (child is Sequential || child is LeNet5) foreach (var l in Leaves(child, path)) yield return l;
            else yield return (path, child);
        }
    }
}
