namespace ConvLab.IO;

/// <summary>Crash-safe file replacement: readers see either the old file or the complete new one, never a partial write.</summary>
public static class AtomicFile
{
    private const string TempSuffix = ".tmp";

    // Kill tests (tools/kill-test) widen the window between writing and renaming so their SIGKILLs land inside it.
    private static readonly int WriteDelayMs =
        int.TryParse(Environment.GetEnvironmentVariable("CONVLAB_ATOMIC_WRITE_DELAY_MS"), out int ms) && ms > 0 ? Math.Min(ms, 10_000) : 0;

    /// <summary>
    /// True for the name of a temporary file <see cref="Write"/> makes (<c>.NAME.&lt;32 hex digits&gt;.tmp</c>): one that
    /// is still there was left by a process killed while writing.
    /// </summary>
    public static bool IsTemporary(string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        string name = Path.GetFileName(fileName);
        if (!name.StartsWith('.') || !name.EndsWith(TempSuffix, StringComparison.Ordinal)) return false;
        string stem = name[..^TempSuffix.Length];
        int dot = stem.LastIndexOf('.');
        return dot > 1 && stem.Length - dot - 1 == 32 && stem.AsSpan(dot + 1).IndexOfAnyExcept("0123456789abcdef") < 0;
    }

    /// <summary>
    /// Deletes the temporary files that writes into <paramref name="directory"/> left behind when their process was killed
    /// (call it only while no other process writes there); returns their names.
    /// </summary>
    public static IReadOnlyList<string> RemoveStale(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory)) return [];
        var removed = new List<string>();
        foreach (var f in Directory.EnumerateFiles(directory, "." + "*" + TempSuffix))
        {
            if (!IsTemporary(f)) continue;
            try { File.Delete(f); removed.Add(Path.GetFileName(f)); }
            catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    /// <summary>
    /// Runs <paramref name="write"/> against a temporary file in the target's directory, flushes it to disk and
    /// renames it over <paramref name="path"/>. If <paramref name="write"/> throws, the temporary file is deleted
    /// and any existing file at <paramref name="path"/> is left untouched.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        // Same directory so the final rename stays on one file system and is atomic.
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                if (WriteDelayMs > 0) Thread.Sleep(WriteDelayMs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
