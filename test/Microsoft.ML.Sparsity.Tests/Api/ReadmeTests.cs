using System.Diagnostics;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Microsoft.ML.Sparsity.Tests.Training;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.Api;

/// <summary>
/// The README's C# snippets, verbatim: the first (train, evaluate, predict, save) is built against the package and run;
/// the second (an application that references only ML.NET, OnnxTransformer and ONNX Runtime) is built without the
/// package and run on the model file the first one saved.
/// </summary>
public sealed partial class ReadmeTests : IDisposable
{
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("sparsity-readme-");

    public void Dispose() => _directory.Delete(recursive: true);

    [GeneratedRegex("```csharp\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            if (File.Exists(Path.Combine(directory.FullName, "Sparsity.sln"))) return directory.FullName;
        throw new InvalidOperationException($"No Sparsity.sln above {AppContext.BaseDirectory}.");
    }

    /// <summary>The versions Directory.Packages.props pins, so the snippet projects use the same packages as the repository.</summary>
    private static string Version(string root, string package) =>
        XDocument.Load(Path.Combine(root, "Directory.Packages.props")).Descendants("PackageVersion")
            .Single(p => (string?)p.Attribute("Include") == package).Attribute("Version")!.Value;

    private string Project(string name, string source, string root, IEnumerable<string> packages, string? packageAssembly)
    {
        string folder = Path.Combine(_directory.FullName, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "Program.cs"), source);
        var project = new XElement("Project", new XAttribute("Sdk", "Microsoft.NET.Sdk"),
            new XElement("PropertyGroup",
                new XElement("OutputType", "Exe"), new XElement("TargetFramework", "net10.0"), new XElement("Nullable", "enable"),
                new XElement("ImplicitUsings", "enable"), new XElement("TreatWarningsAsErrors", "true")),
            new XElement("ItemGroup", packages.Select(p => new XElement("PackageReference", new XAttribute("Include", p), new XAttribute("Version", Version(root, p))))),
            packageAssembly is null ? null : new XElement("ItemGroup", new XElement("Reference", new XAttribute("Include", "Microsoft.ML.Sparsity"), new XElement("HintPath", packageAssembly))));
        project.Save(Path.Combine(folder, name + ".csproj"));
        string build = Run("dotnet", ["build", "-c", "Release", "-o", Path.Combine(folder, "out"), Path.Combine(folder, name + ".csproj")], folder);
        Assert.Contains("Build succeeded", build);
        return Path.Combine(folder, "out", name + ".dll");
    }

    private string Run(string program, string[] arguments, string workingDirectory)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(600_000), $"{program} {string.Join(' ', arguments)} did not finish in 10 minutes.");
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}):\n{output}\n{error.Result}");
        return output;
    }

    [FashionMnistFact]
    public void The_README_snippets_build_and_run_as_written()
    {
        string root = RepositoryRoot();
        var snippets = CSharpBlock().Matches(File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n")).Select(m => m.Groups[1].Value).ToArray();
        Assert.Equal(2, snippets.Length);

        // The package's assembly as the tests use it, with the packages it depends on.
        string package = Path.Combine(AppContext.BaseDirectory, "Microsoft.ML.Sparsity.dll");
        string train = Project("Train", snippets[0], root,
            ["Microsoft.ML", "Microsoft.ML.OnnxTransformer", "Microsoft.ML.OnnxRuntime", "System.Numerics.Tensors", "Google.Protobuf"], package);
        string trained = Run("dotnet", [train], _directory.FullName);
        for (int epoch = 1; epoch <= 5; epoch++) Assert.Matches($@"epoch {epoch}/5  loss \d+\.\d+  sparsity \d+\.\d ?%", trained);
        Assert.DoesNotContain("Pruned at step", trained, StringComparison.Ordinal);
        Assert.Matches(@"accuracy \d+\.\d+ ?%, log-loss \d+\.\d+", trained);
        Assert.Matches(@"(T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot), p = \d+", trained);
        var accuracy = double.Parse(Regex.Match(trained, @"accuracy (\d+\.\d+) ?%").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(accuracy > 85, $"The README example reached {accuracy}%.");
        foreach (string file in new[] { "fashion.zip", "fashion.onnx" }) Assert.True(File.Exists(Path.Combine(_directory.FullName, file)), file);

        string consume = Project("Consume", snippets[1], root, ["Microsoft.ML", "Microsoft.ML.OnnxTransformer", "Microsoft.ML.OnnxRuntime"], packageAssembly: null);
        string consumed = Run("dotnet", [consume], _directory.FullName);
        Assert.Matches(@"class (T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot), p = \d+", consumed);
        Assert.DoesNotContain(Directory.GetFiles(Path.Combine(_directory.FullName, "Consume", "out")), f => f.Contains("Sparsity", StringComparison.Ordinal));
    }
}
