namespace ConvLab.Autograd;

/// <summary>
/// One recorded operation of the autograd tape. A node knows the tensors it was applied to and turns
/// the gradient of its (single) output into gradients for each of them. Nodes are created by the
/// functional layer (<c>ConvLab.NN.Functional.F</c>) and consumed by <see cref="Engine"/>.
/// </summary>
public abstract class Node
{
    private Tensor?[] _inputs = [];
    private bool _released;

    /// <summary>The op's name, e.g. <c>Conv2dBackward</c>, for error messages and graph printing.</summary>
    public virtual string Name => GetType().Name;

    /// <summary>The tensors this op consumed, in the order <see cref="Apply"/> returns their gradients.</summary>
    public IReadOnlyList<Tensor?> Inputs => _inputs;

    internal Tensor?[] InputArray => _inputs;
    internal void SetInputs(Tensor?[] inputs) => _inputs = inputs;

    /// <summary>
    /// Computes the gradient for each input from the gradient of the output. Runs with gradient
    /// recording disabled. Entries may be null where an input needs no gradient.
    /// </summary>
    protected internal abstract Tensor?[] Apply(Tensor gradOutput);

    /// <summary>Drops saved tensors once the graph is not retained.</summary>
    protected virtual void ReleaseSaved() { }

    internal bool Released => _released;

    internal void Release()
    {
        _released = true;
        ReleaseSaved();
        // Only the producers of non-leaf inputs are still needed (to refuse a second backward); holding the tensors
        // themselves would keep every activation of a finished step alive for as long as its loss is referenced.
        for (int i = 0; i < _inputs.Length; i++)
            if (_inputs[i] is { GradFn: not null } t) _inputs[i] = t.GraphStub();
    }

    /// <summary>True when input <paramref name="i"/> needs a gradient (lets Apply skip work).</summary>
    protected bool NeedsGrad(int i) => i < _inputs.Length && _inputs[i] is { RequiresGrad: true };
}

/// <summary>A node whose backward is given as a function; convenient for simple ops.</summary>
internal sealed class FuncNode(string name, Func<Tensor, Tensor?[]> backward) : Node
{
    private Func<Tensor, Tensor?[]>? _backward = backward;
    public override string Name => name;
    protected internal override Tensor?[] Apply(Tensor gradOutput) => _backward!(gradOutput);
    protected override void ReleaseSaved() => _backward = null;
}
