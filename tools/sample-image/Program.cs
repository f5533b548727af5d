// Writes the sample image the filters experiment ships: usage `dotnet run --project tools/sample-image -c Release [-- OUT.png]`.
using ConvLab.Imaging;
using ConvLab.Vision;

string output = args.Length > 0 ? args[0] : Path.Combine("src", "ConvLab.Experiments", "Filters", "sample-image.png");
if (args.Length > 1) { Console.Error.WriteLine("usage: sample-image [OUT.png]"); return 2; }
var directory = Path.GetDirectoryName(Path.GetFullPath(output))!;
if (!Directory.Exists(directory)) { Console.Error.WriteLine($"sample-image: no such directory: {directory} (run from the repository root or give OUT.png)"); return 2; }
var png = ImageFile.EncodePng(SampleImage.Create());
// Written beside the target and moved over it, so a reader never sees half a file.
var temporary = output + ".tmp";
File.WriteAllBytes(temporary, png);
File.Move(temporary, output, overwrite: true);
Console.WriteLine($"{output}: {SampleImage.Size}x{SampleImage.Size} RGB, {png.Length} bytes");
return 0;
