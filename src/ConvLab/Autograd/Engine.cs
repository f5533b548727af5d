namespace ConvLab.Autograd;

/// <summary>
/// Runs reverse-mode differentiation over the recorded graph: a topological order from the root,
/// gradients summed where a tensor is used more than once, leaf gradients accumulated into
/// <see cref="Tensor.Grad"/>.
/// </summary>
public static class Engine
{
    /// <summary>Attaches <paramref name="node"/> as the producer of <paramref name="output"/> when recording is on and any input requires grad.</summary>
    internal static Tensor Record(Tensor output, Node node, params Tensor?[] inputs)
    {
        if (!GradMode.IsEnabled) return output;
        bool any = false;
        foreach (var t in inputs) if (t is { RequiresGrad: true }) { any = true; break; }
        if (!any) return output;
        var kept = new Tensor?[inputs.Length];
        for (int i = 0; i < inputs.Length; i++) kept[i] = inputs[i] is { RequiresGrad: true } ? inputs[i] : null;
        node.SetInputs(kept);
        output.GradFn = node;
        output.RequiresGrad = true;
        return output;
    }

    /// <summary>True when an op on these inputs will be recorded (lets ops skip saving tensors otherwise).</summary>
    internal static bool WillRecord(params Tensor?[] inputs)
    {
        if (!GradMode.IsEnabled) return false;
        foreach (var t in inputs) if (t is { RequiresGrad: true }) return true;
        return false;
    }

    internal static void Backward(Tensor root, Tensor? gradient, bool retainGraph) => Backward(root, gradient, retainGraph, null);

    /// <summary>
    /// Backward that also returns d root / d t for each non-leaf tensor of <paramref name="capture"/>: the gradient that
    /// reaches the node producing it (null when none does). Explanation methods read a layer's gradient this way,
    /// from the graph itself, without hooks on modules. With <paramref name="captureOnly"/> the walk ends once every
    /// captured gradient is complete, as <c>torch.autograd.grad(root, inputs=capture)</c> computes only what it returns:
    /// nodes below the captured tensors run no backward and leaves get no gradient.
    /// </summary>
    internal static Tensor?[] Backward(Tensor root, Tensor? gradient, bool retainGraph, IReadOnlyList<Tensor>? capture, bool captureOnly = false)
    {
        var captured = new Tensor?[capture?.Count ?? 0];
        if (!root.RequiresGrad)
            throw new InvalidOperationException("backward: tensor does not require grad and has no grad_fn (did you forget RequiresGrad, or run under NoGrad?)");
        if (gradient == null)
        {
            if (root.Numel != 1)
                throw new InvalidOperationException($"backward: grad can be implicitly created only for scalar outputs; this tensor has shape {ShapeUtil.Format(root.Shape)}, pass an upstream gradient");
            gradient = Tensor.Ones(root.Shape, root.DType);
        }
        else
        {
            if (!gradient.Shape.SequenceEqual(root.Shape))
                throw new ArgumentException($"backward: gradient has shape {ShapeUtil.Format(gradient.Shape)} but the tensor has shape {ShapeUtil.Format(root.Shape)}");
            gradient = gradient.Detach().To(root.DType);
        }

        using var _ = new NoGrad();
        if (root.GradFn == null)
        {
            Accumulate(root, gradient);
            return captured;
        }

        // Topological order by iterative DFS (deep nets would overflow a recursive one).
        var order = new List<Node>();
        var visited = new HashSet<Node>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Node node, int next)>();
        stack.Push((root.GradFn, 0));
        visited.Add(root.GradFn);
        while (stack.Count > 0)
        {
            var (node, next) = stack.Pop();
            var inputs = node.InputArray;
            bool pushed = false;
            for (int i = next; i < inputs.Length; i++)
            {
                var fn = inputs[i]?.GradFn;
                if (fn != null && visited.Add(fn))
                {
                    stack.Push((node, i + 1));
                    stack.Push((fn, 0));
                    pushed = true;
                    break;
                }
            }
            if (!pushed) order.Add(node);
        }

        var grads = new Dictionary<Node, Tensor>(ReferenceEqualityComparer.Instance) { [root.GradFn] = gradient };
        // Inside a recycler step, storage this backward allocates is recycled as soon as it is dead (a node's
        // temporaries once it returned, a gradient once its node consumed it), as reference counting frees it in
        // PyTorch; otherwise the step would hold every gradient of the graph at once. Only arrays taken after this mark
        // are candidates, so nothing of the forward or the caller's is ever touched.
        var recycle = retainGraph ? null : new BackwardRecycling(StorageRecycler.Mark());
        recycle?.Pending(gradient, +1);
        int pendingCaptures = captured.Length;
        for (int k = order.Count - 1; k >= 0; k--)
        {
            // In topological order every gradient reaching a captured node is summed before that node comes up.
            if (captureOnly && pendingCaptures == 0) break;
            var node = order[k];
            if (!grads.Remove(node, out var g)) continue;
            recycle?.Pending(g, -1);
            if (capture != null)
                for (int c = 0; c < capture.Count; c++)
                    // A copy: the same tensor may be handed on to a leaf and become its (later accumulated) Grad.
                    if (ReferenceEquals(capture[c].GradFn, node) && captured[c] == null) { captured[c] = g.ContiguousCopy(); pendingCaptures--; }
            if (node.Released)
                throw new InvalidOperationException($"backward: trying to backward through the graph a second time ({node.Name} has freed its saved tensors); pass retainGraph: true to the first Backward call");
            int applyMark = StorageRecycler.Mark();
            var inputGrads = node.Apply(g);
            recycle?.AfterApply(applyMark, inputGrads);
            var inputs = node.InputArray;
            if (inputGrads.Length != inputs.Length)
                throw new InvalidOperationException($"autograd: {node.Name} returned {inputGrads.Length} gradients for {inputs.Length} inputs");
            for (int i = 0; i < inputs.Length; i++)
            {
                var input = inputs[i];
                var ig = inputGrads[i];
                if (input == null || ig == null) continue;
                if (!ig.Shape.SequenceEqual(input.Shape))
                    throw new InvalidOperationException($"autograd: {node.Name} produced a gradient of shape {ShapeUtil.Format(ig.Shape)} for input {i} of shape {ShapeUtil.Format(input.Shape)}");
                if (input.GradFn == null)
                {
                    Accumulate(input, ig);
                    recycle?.Pin(input.Grad);
                }
                else
                {
                    // Passed on to another node, which may hand it to several inputs: no longer one leaf's to take.
                    ig.FreshGradient = false;
                    if (grads.TryGetValue(input.GradFn, out var prev))
                    {
                        recycle?.Pending(prev, -1);
                        recycle?.Candidate(prev);
                        grads[input.GradFn] = prev.Add(ig);
                    }
                    else grads[input.GradFn] = ig;
                    recycle?.Pending(grads[input.GradFn], +1);
                }
            }
            recycle?.Candidate(g);
            recycle?.ReleaseDead();
            if (!retainGraph) node.Release();
        }
        return captured;
    }

    /// <summary>Which gradient storages of one backward are still needed, and the release of those that are not.</summary>
    private sealed class BackwardRecycling(int mark)
    {
        private readonly Dictionary<Array, int> _pending = new(ReferenceEqualityComparer.Instance);
        private readonly HashSet<Array> _pinned = new(ReferenceEqualityComparer.Instance);
        private readonly HashSet<Array> _candidates = new(ReferenceEqualityComparer.Instance);
        private readonly HashSet<Array> _keep = new(ReferenceEqualityComparer.Instance);
        private readonly bool _active = mark >= 0;

        /// <summary>Counts a gradient waiting for its node (+1) or handed to it (-1).</summary>
        public void Pending(Tensor t, int delta)
        {
            if (!_active) return;
            _pending[t.Storage] = _pending.GetValueOrDefault(t.Storage) + delta;
        }

        /// <summary>A leaf's gradient lives on.</summary>
        public void Pin(Tensor? t) { if (_active && t != null) _pinned.Add(t.Storage); }

        /// <summary>A gradient that may be dead once this node's outputs are distributed.</summary>
        public void Candidate(Tensor t) { if (_active) _candidates.Add(t.Storage); }

        /// <summary>A node's temporaries are dead once it returned, except the gradients it returned.</summary>
        public void AfterApply(int applyMark, Tensor?[] inputGrads)
        {
            if (!_active) return;
            _keep.Clear();
            foreach (var ig in inputGrads)
                if (ig != null) { _keep.Add(ig.Storage); _candidates.Add(ig.Storage); }
            StorageRecycler.ReleaseSince(applyMark, _keep);
        }

        public void ReleaseDead()
        {
            if (!_active) return;
            foreach (var a in _candidates)
                if (_pending.GetValueOrDefault(a) <= 0 && !_pinned.Contains(a))
                {
                    _pending.Remove(a);
                    StorageRecycler.Release(a, mark);
                }
            _candidates.Clear();
        }
    }

    private static void Accumulate(Tensor leaf, Tensor grad)
    {
        if (!leaf.RequiresGrad) return;
        grad = grad.To(leaf.DType);
        var acc = leaf.Grad;
        // A fresh dense copy so that later in-place updates of Grad never alias graph tensors, unless the node made the
        // gradient for this backward alone (taken once: a second leaf handed the same tensor copies it).
        if (acc == null)
        {
            if (grad.FreshGradient && grad.IsContiguous && grad.StorageOffset == 0 && grad.Numel == grad.Storage.Length)
            {
                grad.FreshGradient = false;
                leaf.Grad = grad;
            }
            else leaf.Grad = grad.ContiguousCopy();
        }
        // In place, as PyTorch does, so a loop that zeroes grads in place allocates nothing here.
        else if (acc.IsContiguous && acc.DType == grad.DType && acc.Shape.SequenceEqual(grad.Shape)) acc.AddDense_(grad);
        else leaf.Grad = acc.Add(grad);
    }
}
