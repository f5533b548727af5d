using System.Numerics;
using System.Numerics.Tensors;
using ConvLab.Autograd;
using ConvLab.Kernels;

namespace ConvLab;

public sealed partial class Tensor
{
    internal void RequireFloat(string op)
    {
        if (!IsFloatingPoint) throw new ArgumentException($"{op}: expected a floating-point tensor but got int64");
    }

    private static (Tensor a, Tensor b) Promote(Tensor a, Tensor b, string op)
    {
        a.RequireFloat(op); b.RequireFloat(op);
        if (a.DType == b.DType) return (a, b);
        return a.DType == DType.Float64 ? (a, b.To(DType.Float64)) : (a.To(DType.Float64), b);
    }

    private static Tensor BinaryKernel<TOp32, TOp64>(Tensor a, Tensor b, string op)
        where TOp32 : IBinaryOp<float> where TOp64 : IBinaryOp<double>
    {
        var shape = ShapeUtil.Broadcast(a._shape, b._shape, op);
        var sa = ShapeUtil.BroadcastStrides(a._shape, a._strides, shape);
        var sb = ShapeUtil.BroadcastStrides(b._shape, b._strides, shape);
        if (a.IsMeta || b.IsMeta) return Analysis.MetaOps.Elementwise(op, shape, a.DType, a, b);
        var y = Zeros(shape, a.DType);
        if (a.DType == DType.Float32)
            Elementwise.Binary<float, TOp32>((float[])a.Storage, a._offset, sa, (float[])b.Storage, b._offset, sb, shape, y.Span<float>());
        else
            Elementwise.Binary<double, TOp64>((double[])a.Storage, a._offset, sa, (double[])b.Storage, b._offset, sb, shape, y.Span<double>());
        return y;
    }

    /// <summary>Element-wise sum with broadcasting (PyTorch's <c>add</c>).</summary>
    public Tensor Add(Tensor other)
    {
        var (a, b) = Promote(this, other, "add");
        var y = BinaryKernel<AddOp<float>, AddOp<double>>(a, b, "add");
        int[] sa = a._shape, sb = b._shape;
        Analysis.OpRecorder.Record(y, "add", [a, b]);
        return Engine.Record(y, new FuncNode("AddBackward", g => [g.SumToShape(sa), g.SumToShape(sb)]), a, b);
    }

    /// <summary>Element-wise difference with broadcasting (PyTorch's <c>sub</c>).</summary>
    public Tensor Sub(Tensor other)
    {
        var (a, b) = Promote(this, other, "sub");
        var y = BinaryKernel<SubOp<float>, SubOp<double>>(a, b, "sub");
        int[] sa = a._shape, sb = b._shape;
        Analysis.OpRecorder.Record(y, "sub", [a, b]);
        return Engine.Record(y, new FuncNode("SubBackward", g => [g.SumToShape(sa), g.Neg().SumToShape(sb)]), a, b);
    }

    /// <summary>Element-wise product with broadcasting (PyTorch's <c>mul</c>).</summary>
    public Tensor Mul(Tensor other)
    {
        var (a, b) = Promote(this, other, "mul");
        var y = BinaryKernel<MulOp<float>, MulOp<double>>(a, b, "mul");
        Analysis.OpRecorder.Record(y, "mul", [a, b]);
        if (!Engine.WillRecord(a, b)) return y;
        Tensor ad = a.Detach(), bd = b.Detach();
        return Engine.Record(y, new FuncNode("MulBackward", g => [g.Mul(bd).SumToShape(ad._shape), g.Mul(ad).SumToShape(bd._shape)]), a, b);
    }

    /// <summary>Element-wise quotient with broadcasting (PyTorch's <c>div</c>).</summary>
    public Tensor Div(Tensor other)
    {
        var (a, b) = Promote(this, other, "div");
        var y = BinaryKernel<DivOp<float>, DivOp<double>>(a, b, "div");
        Analysis.OpRecorder.Record(y, "div", [a, b]);
        if (!Engine.WillRecord(a, b)) return y;
        Tensor ad = a.Detach(), bd = b.Detach();
        return Engine.Record(y, new FuncNode("DivBackward", g =>
        {
            var ga = g.Div(bd);
            return [ga.SumToShape(ad._shape), ga.Mul(ad).Div(bd).Neg().SumToShape(bd._shape)];
        }), a, b);
    }

    /// <summary>Element-wise maximum with broadcasting (gradient to the larger; ties split evenly as PyTorch does).</summary>
    public Tensor Maximum(Tensor other)
    {
        var (a, b) = Promote(this, other, "maximum");
        var y = BinaryKernel<MaxOp<float>, MaxOp<double>>(a, b, "maximum");
        if (!Engine.WillRecord(a, b)) return y;
        Tensor ad = a.Detach(), bd = b.Detach();
        return Engine.Record(y, new FuncNode("MaximumBackward", g =>
        {
            var wa = ad.Gt(bd).Add(ad.Eq(bd).MulScalar(0.5));
            return [g.Mul(wa).SumToShape(ad._shape), g.Mul(wa.Neg().AddScalar(1)).SumToShape(bd._shape)];
        }), a, b);
    }

    /// <summary>1 where this &gt; other, else 0 (float, not differentiable).</summary>
    public Tensor Gt(Tensor other) => Compare(other, "gt", (x, y) => x > y);
    /// <summary>1 where this &lt; other, else 0 (float, not differentiable).</summary>
    public Tensor Lt(Tensor other) => Compare(other, "lt", (x, y) => x < y);
    /// <summary>1 where this == other, else 0 (float, not differentiable).</summary>
    public Tensor Eq(Tensor other) => Compare(other, "eq", (x, y) => x == y);

    private Tensor Compare(Tensor other, string op, Func<double, double, bool> f)
    {
        var shape = ShapeUtil.Broadcast(_shape, other._shape, op);
        var a = Detach().Expand(shape).ToDoubleArray();
        var b = other.Detach().Expand(shape).ToDoubleArray();
        var r = new double[a.Length];
        for (int i = 0; i < r.Length; i++) r[i] = f(a[i], b[i]) ? 1 : 0;
        return FromArray(r, shape).To(IsFloatingPoint ? DType : DType.Float32);
    }

    /// <summary>Adds a scalar.</summary>
    public Tensor AddScalar(double s) => Add(Scalar(s, IsFloatingPoint ? DType : DType.Float32));
    /// <summary>Multiplies by a scalar.</summary>
    public Tensor MulScalar(double s) => Mul(Scalar(s, IsFloatingPoint ? DType : DType.Float32));

    /// <summary>Element-wise negation.</summary>
    public Tensor Neg() => MulScalar(-1);

    /// <summary>Element-wise <c>exp</c>.</summary>
    public Tensor Exp()
    {
        var y = Map("exp", TensorPrimitives.Exp, TensorPrimitives.Exp);
        var yd = y.Detach();
        return Engine.Record(y, new FuncNode("ExpBackward", g => [g.Mul(yd)]), this);
    }

    /// <summary>Element-wise natural logarithm.</summary>
    public Tensor Log()
    {
        var y = Map("log", TensorPrimitives.Log, TensorPrimitives.Log);
        var xd = Detach();
        return Engine.Record(y, new FuncNode("LogBackward", g => [g.Div(xd)]), this);
    }

    /// <summary>Element-wise square root.</summary>
    public Tensor Sqrt()
    {
        var y = Map("sqrt", TensorPrimitives.Sqrt, TensorPrimitives.Sqrt);
        var yd = y.Detach();
        return Engine.Record(y, new FuncNode("SqrtBackward", g => [g.Div(yd.MulScalar(2))]), this);
    }

    /// <summary>Element-wise absolute value (gradient sign(x), 0 at 0).</summary>
    public Tensor Abs()
    {
        var y = Map("abs", TensorPrimitives.Abs, TensorPrimitives.Abs);
        var xd = Detach();
        return Engine.Record(y, new FuncNode("AbsBackward", g => [g.Mul(xd.Sign())]), this);
    }

    /// <summary>Element-wise sign (-1, 0, 1); not differentiable.</summary>
    public Tensor Sign()
    {
        var d = ToDoubleArray();
        for (int i = 0; i < d.Length; i++) d[i] = double.IsNaN(d[i]) ? double.NaN : Math.Sign(d[i]);
        return FromArray(d, _shape).To(DType);
    }

    /// <summary>Element-wise power with a scalar exponent.</summary>
    public Tensor Pow(double exponent)
    {
        RequireFloat("pow");
        var d = ToDoubleArray();
        for (int i = 0; i < d.Length; i++) d[i] = Math.Pow(d[i], exponent);
        var y = FromArray(d, _shape).To(DType);
        var xd = Detach();
        return Engine.Record(y, new FuncNode("PowBackward", g => [g.Mul(xd.Pow(exponent - 1).MulScalar(exponent))]), this);
    }

    private Tensor Map(string op, SpanMap<float> f32, SpanMap<double> f64)
    {
        RequireFloat(op);
        if (IsMeta) return Analysis.MetaOps.Elementwise(op, _shape, DType, this);
        var y = Zeros(_shape, DType);
        if (DType == DType.Float32) f32(Read<float>(), y.Span<float>());
        else f64(Read<double>(), y.Span<double>());
        return y;
    }

    internal delegate void SpanMap<T>(ReadOnlySpan<T> x, Span<T> y);

    /// <summary>Element-wise sum.</summary>
    public static Tensor operator +(Tensor a, Tensor b) => a.Add(b);
    /// <summary>Element-wise difference.</summary>
    public static Tensor operator -(Tensor a, Tensor b) => a.Sub(b);
    /// <summary>Element-wise product.</summary>
    public static Tensor operator *(Tensor a, Tensor b) => a.Mul(b);
    /// <summary>Element-wise quotient.</summary>
    public static Tensor operator /(Tensor a, Tensor b) => a.Div(b);
    /// <summary>Adds a scalar.</summary>
    public static Tensor operator +(Tensor a, double s) => a.AddScalar(s);
    /// <summary>Adds a scalar.</summary>
    public static Tensor operator +(double s, Tensor a) => a.AddScalar(s);
    /// <summary>Subtracts a scalar.</summary>
    public static Tensor operator -(Tensor a, double s) => a.AddScalar(-s);
    /// <summary>Subtracts from a scalar.</summary>
    public static Tensor operator -(double s, Tensor a) => a.Neg().AddScalar(s);
    /// <summary>Multiplies by a scalar.</summary>
    public static Tensor operator *(Tensor a, double s) => a.MulScalar(s);
    /// <summary>Multiplies by a scalar.</summary>
    public static Tensor operator *(double s, Tensor a) => a.MulScalar(s);
    /// <summary>Divides by a scalar.</summary>
    public static Tensor operator /(Tensor a, double s) => a.MulScalar(1.0 / s);
    /// <summary>Negation.</summary>
    public static Tensor operator -(Tensor a) => a.Neg();
}
