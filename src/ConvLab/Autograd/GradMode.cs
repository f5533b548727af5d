namespace ConvLab.Autograd;

/// <summary>Whether operations are recorded for autograd on the current thread.</summary>
public static class GradMode
{
    [ThreadStatic] private static int _disabledDepth;

    /// <summary>True unless inside a <see cref="NoGrad"/> scope.</summary>
    public static bool IsEnabled => _disabledDepth == 0;

    internal static void Push() => _disabledDepth++;
    internal static void Pop() => _disabledDepth--;

    /// <summary>Records operations until the returned scope is disposed, even inside <see cref="NoGrad"/> (for library code that needs the graph).</summary>
    internal static IDisposable Enable()
    {
        int saved = _disabledDepth;
        _disabledDepth = 0;
        return new Restore(saved);
    }

    private sealed class Restore(int depth) : IDisposable
    {
        public void Dispose() => _disabledDepth = depth;
    }
}

/// <summary>
/// A scope in which no operation is recorded (PyTorch's <c>torch.no_grad()</c>):
/// <c>using (new NoGrad()) { ... }</c>. Scopes nest; each applies to the thread that opened it.
/// </summary>
public readonly struct NoGrad : IDisposable
{
    private readonly bool _active;

    /// <summary>Disables gradient recording until disposed.</summary>
    public NoGrad()
    {
        _active = true;
        GradMode.Push();
    }

    /// <summary>Restores the previous gradient mode.</summary>
    public void Dispose()
    {
        if (_active) GradMode.Pop();
    }
}

/// <summary>
/// Guided backpropagation's switch: while a scope is open on a thread, every ReLU backward run on that thread passes
/// only positive gradients at positive inputs. Thread-local and scoped, so it never leaks into other backward passes.
/// </summary>
internal static class GuidedRelu
{
    [ThreadStatic] private static int _depth;

    /// <summary>True inside a <see cref="Enter"/> scope on this thread.</summary>
    public static bool IsActive => _depth > 0;

    /// <summary>Turns the guided ReLU backward on until the returned scope is disposed.</summary>
    public static IDisposable Enter()
    {
        _depth++;
        return new Exit();
    }

    private sealed class Exit : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            _depth--;
        }
    }
}
