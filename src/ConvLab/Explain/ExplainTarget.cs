namespace ConvLab.Explain;

/// <summary>
/// What an explanation explains: one scalar per sample computed from the model's output, whose gradient (or change
/// under perturbation) the methods of <see cref="Attributions"/> attribute to the input or a layer. Captum's
/// <c>target</c>, extended to any function of the output and to one box of a YOLO head.
/// </summary>
public sealed class ExplainTarget
{
    private enum Kind { Class, Classes, Top, Function, YoloV3, YoloV1 }

    private readonly Kind _kind;
    private readonly int[] _classes = [];
    private readonly Func<Tensor, Tensor>? _function;
    private readonly (int Scale, int Anchor, int Row, int Col, int Cls, int Count) _box;

    private ExplainTarget(Kind kind) => _kind = kind;

    private ExplainTarget(Kind kind, int[] classes) : this(kind) => _classes = classes;

    private ExplainTarget(Func<Tensor, Tensor> function) : this(Kind.Function) => _function = function;

    private ExplainTarget(Kind kind, (int, int, int, int, int, int) box) : this(kind) => _box = box;

    /// <summary>The logit of class <paramref name="index"/> for every sample of an (N, classes) output.</summary>
    public static ExplainTarget Class(int index) => new(Kind.Class, [index]);

    /// <summary>One class per sample (Captum's list target): the logit of <c>classes[n]</c> for sample n.</summary>
    public static ExplainTarget Classes(params int[] classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        return new(Kind.Classes, (int[])classes.Clone());
    }

    /// <summary>The logit of each sample's highest-scoring class (argmax of the output, the first on ties).</summary>
    public static ExplainTarget Top { get; } = new(Kind.Top);

    /// <summary>
    /// Any scalar per sample: <paramref name="function"/> maps the model's output (N, ...) to shape (N); it must be
    /// built from tensor operations so it is differentiable. Resolved targets are reported as -1.
    /// </summary>
    public static ExplainTarget Function(Func<Tensor, Tensor> function)
    {
        ArgumentNullException.ThrowIfNull(function);
        return new(function);
    }

    /// <summary>
    /// One box of ConvLab's YOLOv3 (<see cref="Models.YoloV3"/>): objectness × class score,
    /// sigmoid(t_obj)·sigmoid(t_cls), of anchor <paramref name="anchor"/> in grid cell (<paramref name="row"/>,
    /// <paramref name="col"/>) of scale <paramref name="scale"/> (0, 1, 2 = strides 32, 16, 8). Works on
    /// <see cref="Models.YoloV3.Forward"/>'s (N, rows, 5 + C) output (rows ordered scale, anchor, row, column; the grid
    /// sizes come from the input's height and width) and on one raw scale map (N, A·(5 + C), H, W) whose channels are
    /// anchor-major, a·(5 + C) + k, as in <c>yolo_v3_decode</c> (then <paramref name="scale"/> must be 0).
    /// </summary>
    /// <param name="scale">Scale index (0 = stride 32).</param>
    /// <param name="anchor">Anchor index within the scale.</param>
    /// <param name="row">Grid row.</param>
    /// <param name="col">Grid column.</param>
    /// <param name="cls">Class index.</param>
    /// <param name="anchors">Anchors per scale (3 in YOLOv3).</param>
    public static ExplainTarget YoloBox(int scale, int anchor, int row, int col, int cls, int anchors = 3) =>
        new(Kind.YoloV3, (scale, anchor, row, col, cls, anchors));

    /// <summary>
    /// One box of ConvLab's YOLOv1 head (<see cref="Models.YoloV1Head"/>, output (N, S, S, 5B + C)): its confidence ×
    /// class score, the product <c>yolo_v1_decode</c> reports as the box's class score (no sigmoid: the head regresses
    /// both directly).
    /// </summary>
    /// <param name="box">Box index within the cell (0..B-1).</param>
    /// <param name="row">Grid row.</param>
    /// <param name="col">Grid column.</param>
    /// <param name="cls">Class index.</param>
    /// <param name="boxesPerCell">B of the head.</param>
    public static ExplainTarget YoloV1Box(int box, int row, int col, int cls, int boxesPerCell) =>
        new(Kind.YoloV1, (0, box, row, col, cls, boxesPerCell));

    /// <inheritdoc/>
    public override string ToString() => _kind switch
    {
        Kind.Class => $"class {_classes[0]}",
        Kind.Classes => $"classes [{string.Join(", ", _classes)}]",
        Kind.Top => "top",
        Kind.Function => "function",
        Kind.YoloV3 => $"yolo box (scale {_box.Scale}, anchor {_box.Anchor}, row {_box.Row}, col {_box.Col}, class {_box.Cls})",
        _ => $"yolov1 box (box {_box.Anchor}, row {_box.Row}, col {_box.Col}, class {_box.Cls})",
    };

    /// <summary>True when the target is a class of an (N, classes) output (resolved to one class per sample).</summary>
    internal bool IsClassification => _kind is Kind.Class or Kind.Classes or Kind.Top;

    /// <summary>
    /// The explained scalar per sample (N) of <paramref name="output"/>, and the class each sample's target resolved
    /// to (-1 for a function). Errors start with <paramref name="op"/>.
    /// </summary>
    internal (Tensor Scores, int[] Resolved) Select(Tensor output, ReadOnlySpan<int> inputShape, string op)
    {
        int n = output.Rank > 0 ? output.Shape[0] : 0;
        switch (_kind)
        {
            case Kind.Class or Kind.Classes or Kind.Top:
            {
                if (output.Rank != 2)
                    throw new ArgumentException($"{op}: a class target needs an (N, classes) output, got {ShapeUtil.Format(output.Shape)}; use ExplainTarget.Function for other outputs");
                int k = output.Shape[1];
                int[] cls = _kind switch
                {
                    Kind.Class => Enumerable.Repeat(_classes[0], n).ToArray(),
                    Kind.Classes => _classes.Length == n ? _classes
                        : throw new ArgumentException($"{op}: target lists {_classes.Length} classes for {n} samples"),
                    _ => TopClasses(output),
                };
                foreach (var c in cls)
                    if (c < 0 || c >= k) throw new ArgumentException($"{op}: target class {c} is out of range for {k} classes");
                return (ClassScores(output, cls), cls);
            }
            case Kind.Function:
            {
                var s = _function!(output);
                if (s.Rank != 1 || s.Shape[0] != n)
                    throw new ArgumentException($"{op}: the target function must return one value per sample, shape ({n}), got {ShapeUtil.Format(s.Shape)}");
                return (s, Enumerable.Repeat(-1, n).ToArray());
            }
            case Kind.YoloV3: return (YoloV3Score(output, inputShape, op), Enumerable.Repeat(_box.Cls, n).ToArray());
            default: return (YoloV1Score(output, op), Enumerable.Repeat(_box.Cls, n).ToArray());
        }
    }

    /// <summary>The same target for rows of a batch in which row r stands for sample <c>sampleOfRow[r]</c>.</summary>
    internal ExplainTarget ForRows(int[] resolved, ReadOnlySpan<int> sampleOfRow)
    {
        if (!IsClassification) return this;
        var cls = new int[sampleOfRow.Length];
        for (int r = 0; r < cls.Length; r++) cls[r] = resolved[sampleOfRow[r]];
        return new(Kind.Classes, cls);
    }

    private static int[] TopClasses(Tensor output)
    {
        var v = output.Detach().ToDoubleArray();
        int n = output.Shape[0], k = output.Shape[1];
        var cls = new int[n];
        for (int i = 0; i < n; i++)
        {
            int best = 0;
            for (int j = 1; j < k; j++) if (v[i * k + j] > v[i * k + best]) best = j;
            cls[i] = best;
        }
        return cls;
    }

    /// <summary>output[n, cls[n]] as a differentiable (N) tensor: the output times a one-hot mask, summed over classes.</summary>
    internal static Tensor ClassScores(Tensor output, int[] cls)
    {
        int n = output.Shape[0], k = output.Shape[1];
        var mask = new double[n * k];
        for (int i = 0; i < n; i++) mask[i * k + cls[i]] = 1;
        return output.Mul(Tensor.FromArray(mask, n, k).To(output.DType)).Sum(1);
    }

    private Tensor YoloV3Score(Tensor output, ReadOnlySpan<int> inputShape, string op)
    {
        var (scale, anchor, row, col, cls, a) = _box;
        if (a < 1) throw new ArgumentException($"{op}: anchors per scale must be positive, got {a}");
        if (output.Rank == 4)
        {
            int per = output.Shape[1] / a, h = output.Shape[2], w = output.Shape[3];
            if (output.Shape[1] % a != 0 || per < 6)
                throw new ArgumentException($"{op}: a YOLO scale map needs A·(5 + C) channels for A = {a}, got {output.Shape[1]}");
            CheckBox(op, scale, 1, anchor, a, row, h, col, w, cls, per - 5);
            var cell = output.Select(3, col).Select(2, row);
            return F(cell.Select(1, anchor * per + 4)).Mul(F(cell.Select(1, anchor * per + 5 + cls)));
        }
        if (output.Rank != 3 || inputShape.Length != 4)
            throw new ArgumentException($"{op}: a YOLOv3 box target needs the (N, rows, 5 + C) output of YoloV3 or one (N, A·(5 + C), H, W) scale map, got {ShapeUtil.Format(output.Shape)}");
        int k = output.Shape[2];
        int offset = 0, total = 0, gh = 0, gw = 0;
        for (int s = 0; s < 3; s++)
        {
            int hs = inputShape[2] / (32 >> s), ws = inputShape[3] / (32 >> s);
            if (s < scale) offset += a * hs * ws;
            if (s == scale) (gh, gw) = (hs, ws);
            total += a * hs * ws;
        }
        if (total != output.Shape[1])
            throw new ArgumentException($"{op}: output has {output.Shape[1]} rows but a YOLOv3 on a {inputShape[2]}x{inputShape[3]} input has {total}");
        CheckBox(op, scale, 3, anchor, a, row, gh, col, gw, cls, k - 5);
        var r = output.Select(1, offset + anchor * gh * gw + row * gw + col);
        return F(r.Select(1, 4)).Mul(F(r.Select(1, 5 + cls)));

        static Tensor F(Tensor t) => NN.Functional.F.Sigmoid(t);
    }

    private Tensor YoloV1Score(Tensor output, string op)
    {
        var (_, box, row, col, cls, b) = _box;
        if (output.Rank != 4 || output.Shape[1] != output.Shape[2] || b < 1 || output.Shape[3] <= 5 * b)
            throw new ArgumentException($"{op}: a YOLOv1 box target needs the head's (N, S, S, 5B + C) output with B = {b}, got {ShapeUtil.Format(output.Shape)}");
        int s = output.Shape[1], c = output.Shape[3] - 5 * b;
        CheckBox(op, 0, 1, box, b, row, s, col, s, cls, c);
        var cell = output.Select(2, col).Select(1, row);
        return cell.Select(1, 5 * box + 4).Mul(cell.Select(1, 5 * b + cls));
    }

    private static void CheckBox(string op, int scale, int scales, int anchor, int anchors, int row, int h, int col, int w, int cls, int classes)
    {
        if (scale < 0 || scale >= scales) throw new ArgumentException($"{op}: box scale {scale} is out of range (0..{scales - 1})");
        if (anchor < 0 || anchor >= anchors) throw new ArgumentException($"{op}: box anchor {anchor} is out of range (0..{anchors - 1})");
        if (row < 0 || row >= h || col < 0 || col >= w) throw new ArgumentException($"{op}: box cell ({row}, {col}) is outside the {h}x{w} grid");
        if (cls < 0 || cls >= classes) throw new ArgumentException($"{op}: target class {cls} is out of range for {classes} classes");
    }
}
