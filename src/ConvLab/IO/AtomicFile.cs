namespace ConvLab.IO;

/// <summary>Crash-safe file replacement: readers see either the old file or the complete new one, never a partial write.</summary>
public static class AtomicFile
{
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
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
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
