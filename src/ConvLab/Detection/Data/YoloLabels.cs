using System.Globalization;

namespace ConvLab.Detection;

/// <summary>One box of a YOLO-format label file: class index and centre/size normalised to [0, 1] by the image size.</summary>
/// <param name="Class">Class index.</param>
/// <param name="Cx">Centre x / image width.</param>
/// <param name="Cy">Centre y / image height.</param>
/// <param name="W">Width / image width.</param>
/// <param name="H">Height / image height.</param>
public readonly record struct YoloLabel(int Class, double Cx, double Cy, double W, double H);

/// <summary>Reads YOLO-format label files (darknet's and Ultralytics' layout): one line <c>class cx cy w h</c> per box, values
/// normalised to [0, 1]; blank lines are skipped. Every problem is an <see cref="InvalidDataException"/> naming file and line.</summary>
public static class YoloLabels
{
    /// <summary>Largest label file read (bytes): a label file is text of a few lines per box.</summary>
    public const long MaxFileBytes = 16 << 20;

    /// <summary>Parses the label file at <paramref name="path"/>; <paramref name="numClasses"/> (when known) bounds the class index.</summary>
    public static List<YoloLabel> Read(string path, int? numClasses = null)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new InvalidDataException($"{path}: label file not found");
        if (info.Length > MaxFileBytes) throw new InvalidDataException($"{path}: label file is {info.Length} bytes, more than the {MaxFileBytes} a label file may have");
        return Parse(File.ReadAllText(path), path, numClasses);
    }

    /// <summary>Parses label text; <paramref name="name"/> names the file in error messages.</summary>
    public static List<YoloLabel> Parse(string text, string name, int? numClasses = null)
    {
        var result = new List<YoloLabel>();
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0) continue;
            string where = $"{name}:{i + 1}";
            var tok = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (tok.Length != 5) throw new InvalidDataException($"{where}: expected 5 values 'class cx cy w h', got {tok.Length} ('{Short(line)}')");
            if (!int.TryParse(tok[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int cls))
                throw new InvalidDataException($"{where}: class '{Short(tok[0])}' is not an integer");
            if (cls < 0 || (numClasses is int n && cls >= n))
                throw new InvalidDataException($"{where}: class {cls} is out of range" + (numClasses is int m ? $" [0, {m - 1}]" : " (negative)"));
            var v = new double[4];
            string[] names = ["cx", "cy", "w", "h"];
            for (int k = 0; k < 4; k++)
            {
                if (!double.TryParse(tok[k + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out v[k]) || !double.IsFinite(v[k]))
                    throw new InvalidDataException($"{where}: {names[k]} '{Short(tok[k + 1])}' is not a number");
                if (v[k] < 0 || v[k] > 1) throw new InvalidDataException($"{where}: {names[k]} = {tok[k + 1]} is outside [0, 1] (values are normalised by the image size)");
            }
            if (v[2] == 0 || v[3] == 0) throw new InvalidDataException($"{where}: box has zero width or height");
            const double slack = 1e-6; // rounding in files written with a few decimals
            if (v[0] - v[2] / 2 < -slack || v[0] + v[2] / 2 > 1 + slack || v[1] - v[3] / 2 < -slack || v[1] + v[3] / 2 > 1 + slack)
                throw new InvalidDataException($"{where}: box (cx {tok[1]}, cy {tok[2]}, w {tok[3]}, h {tok[4]}) extends outside the image");
            result.Add(new YoloLabel(cls, v[0], v[1], v[2], v[3]));
        }
        return result;
    }

    /// <summary>Writes labels in YOLO format (atomically), six decimals per value.</summary>
    public static void Write(string path, IEnumerable<YoloLabel> labels)
    {
        var lines = labels.Select(l => string.Create(CultureInfo.InvariantCulture, $"{l.Class} {l.Cx:0.######} {l.Cy:0.######} {l.W:0.######} {l.H:0.######}"));
        var bytes = System.Text.Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n");
        IO.AtomicFile.Write(path, s => s.Write(bytes));
    }

    private static string Short(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
