using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace ConvLab.Cli;

/// <summary>
/// Runs a parsed command line and is the one place where errors become what a user reads: parse errors one line each,
/// prefixed with the command and rewritten so that no .NET type name shows (System.CommandLine reports a bad
/// <c>--lr abc</c> as "expected type 'System.Nullable`1[System.Double]'"), followed by no help screen; an exception a
/// command did not handle becomes one line with its message instead of a stack trace. Exit code 1 for both.
/// </summary>
internal static partial class CliErrors
{
    public static int Invoke(RootCommand root, string[] args)
    {
        var result = root.Parse(args);
        string verb = Verb(result.CommandResult);
        // "--quick=maybe" next to an optional positional argument parses as the flag plus that argument; refuse it by name.
        foreach (var a in args)
        {
            int eq = a.IndexOf('=', StringComparison.Ordinal);
            if (!a.StartsWith("--", StringComparison.Ordinal) || eq < 0) continue;
            var flag = result.CommandResult.Command.Options.FirstOrDefault(o => o.Name == a[..eq] && o.ValueType == typeof(bool));
            if (flag != null && !bool.TryParse(a[(eq + 1)..], out _))
            {
                Console.Error.WriteLine($"{verb}: {flag.Name}: '{a[(eq + 1)..]}' is not true or false (a flag takes no value, or true/false)");
                return 1;
            }
        }
        if (result.Errors.Count > 0)
        {
            string help = verb == "convlab" ? "convlab --help" : $"convlab {verb} --help";
            foreach (var e in result.Errors)
            {
                string message = Rewrite(e.Message);
                if (OptionBefore(message, args) is { } flag) message = $"{flag}: unexpected value {message[(message.IndexOf('\'') )..].TrimEnd('.')} (a flag takes no value, or true/false)";
                else if (OptionOf(e.SymbolResult) is { } option && !message.Contains(option, StringComparison.Ordinal)) message = $"{option}: {message}";
                Console.Error.WriteLine($"{verb}: {message} (see {help})");
            }
            return 1;
        }
        try { return result.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A command that let an exception through (an I/O error it did not expect, say) still gets one line.
            string message = e is AggregateException { InnerException: { } inner } ? inner.Message : e.Message;
            Console.Error.WriteLine(message.StartsWith(verb + ":", StringComparison.Ordinal) ? message : $"{verb}: {message}");
            return 1;
        }
    }

    /// <summary>The command path without the executable name: "train", "detect train"; "convlab" for the root.</summary>
    private static string Verb(CommandResult command)
    {
        var names = new List<string>();
        for (SymbolResult? r = command; r is CommandResult c && c.Parent != null; r = c.Parent) names.Insert(0, c.Command.Name);
        return names.Count == 0 ? "convlab" : string.Join(" ", names);
    }

    /// <summary>
    /// The option an unrecognized token belongs to: <c>--quick=maybe</c> or <c>--quick maybe</c>, where a flag's value is not
    /// true/false, are reported by System.CommandLine as a stray token without naming the flag.
    /// </summary>
    private static string? OptionBefore(string message, string[] args)
    {
        var m = Unrecognized().Match(message);
        if (!m.Success) return null;
        string token = m.Groups["token"].Value;
        for (int i = 0; i < args.Length; i++)
        {
            int eq = args[i].IndexOf('=', StringComparison.Ordinal);
            if (args[i].StartsWith('-') && eq > 0 && args[i][(eq + 1)..] == token) return args[i][..eq];
            if (args[i] == token && i > 0 && args[i - 1].StartsWith('-') && args[i - 1].Length > 1 && !double.TryParse(args[i - 1], out _)) return args[i - 1];
        }
        return null;
    }

    [GeneratedRegex(@"^Unrecognized command or argument '(?<token>.*)'\.?$")]
    private static partial Regex Unrecognized();

    private static string? OptionOf(SymbolResult? r) => r switch
    {
        OptionResult o => o.Option.Name,
        ArgumentResult { Parent: OptionResult o } => o.Option.Name,
        _ => null,
    };

    /// <summary>System.CommandLine's messages on one line, without .NET type names ("Cannot parse argument 'abc' for option '--lr' as expected type ...").</summary>
    internal static string Rewrite(string message)
    {
        message = Whitespace().Replace(message, " ").Trim();
        var m = CannotParse().Match(message);
        if (!m.Success) return message;
        return $"{m.Groups["name"].Value}: '{m.Groups["value"].Value}' is not {Describe(m.Groups["type"].Value)}";
    }

    private static string Describe(string type)
    {
        var t = NullableOf().Match(type) is { Success: true } n ? n.Groups["inner"].Value : type;
        t = t.EndsWith("[]", StringComparison.Ordinal) ? t[..^2] : t;
        return t switch
        {
            "System.Double" or "System.Single" => "a number",
            "System.Int32" => $"an integer from {int.MinValue} to {int.MaxValue}",
            "System.Int64" => "an integer",
            "System.UInt64" or "System.UInt32" => "a non-negative integer",
            "System.Boolean" => "true or false",
            _ => "a valid value",
        };
    }

    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for (?<what>option|argument) '(?<name>[^']*)' as expected type '(?<type>[^']*)'\.?$", RegexOptions.Singleline)]
    private static partial Regex CannotParse();

    [GeneratedRegex(@"^System\.Nullable`1\[(?<inner>.*)\]$")]
    private static partial Regex NullableOf();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}

/// <summary>Checks of path options made before a command does any work, so a bad path is one line naming its option.</summary>
internal static class CliPaths
{
    /// <summary>A file to write must not be an existing directory.</summary>
    public static void OutputFile(string option, string? path)
    {
        if (path != null && Directory.Exists(path)) throw new ArgumentException($"{option}: '{path}' is a directory; expected a file to write");
    }

    /// <summary>A folder to write into must not be an existing file.</summary>
    public static void OutputFolder(string option, string? path)
    {
        if (path != null && File.Exists(path)) throw new ArgumentException($"{option}: '{path}' is a file; expected a folder");
    }

    /// <summary>Reads what <paramref name="option"/> names; a missing, unreadable or malformed file becomes an error naming the option.</summary>
    public static T Read<T>(string option, Func<T> read)
    {
        try { return read(); }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException or NotSupportedException or UnauthorizedAccessException)
        {
            throw new ArgumentException(e.Message.StartsWith(option, StringComparison.Ordinal) ? e.Message : $"{option}: {e.Message}", e);
        }
    }
}
