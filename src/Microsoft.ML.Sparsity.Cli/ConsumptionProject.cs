using System.Globalization;

namespace Microsoft.ML.Sparsity.Cli;

/// <summary>
/// Like Model Builder's: a small console project that loads the trained model and predicts, with ML.NET, its ONNX
/// transformer and ONNX Runtime alone (the saved model is portable, so the project does not need this package).
/// </summary>
internal static class ConsumptionProject
{
    public const string ModelFileName = "model.zip";

    /// <summary>
    /// Writes <c>Consume.csproj</c>, <c>Program.cs</c> and a copy of the model into <paramref name="folder"/>: a program
    /// that predicts rows of feature values, or, for a model trained on an image folder (<paramref name="images"/>),
    /// image files read as the tool read them.
    /// </summary>
    public static void Write(string folder, string modelPath, int featureCount, ImageSpec? images)
    {
        Directory.CreateDirectory(folder);
        Write(Path.Combine(folder, ModelFileName), File.ReadAllBytes(modelPath));
        Write(Path.Combine(folder, "Consume.csproj"), """
            <Project Sdk="Microsoft.NET.Sdk">
              <!-- Written by mlnet-sparsity: loads model.zip and predicts. Only ML.NET's packages are needed. -->
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Microsoft.ML" Version="6.0.0" />
                <PackageReference Include="Microsoft.ML.OnnxTransformer" Version="6.0.0" />
                <PackageReference Include="Microsoft.ML.OnnxRuntime" Version="1.32.0" />IMAGE_PACKAGE
              </ItemGroup>
              <ItemGroup>
                <None Include="model.zip" CopyToOutputDirectory="PreserveNewest" />
              </ItemGroup>
            </Project>

            """.Replace("IMAGE_PACKAGE", images is null ? "" : "\n    <PackageReference Include=\"Microsoft.ML.ImageAnalytics\" Version=\"6.0.0\" />", StringComparison.Ordinal));
        Write(Path.Combine(folder, "Program.cs"), images is null ? RowsProgram(featureCount) : ImagesProgram(images));
    }

    private static void Write(string path, string text) => Write(path, new System.Text.UTF8Encoding(false).GetBytes(text));

    private static void Write(string path, byte[] content) => Serialization.AtomicFile.Write(path, stream => stream.Write(content));

    private static string RowsProgram(int featureCount) => """
            // Written by mlnet-sparsity. Predicts the class of each row of a CSV file of FEATURE_COUNT feature values (no header,
            // no label column), or of an all-zero example when no file is given, with the model in model.zip.
            // Usage: dotnet run -- [rows.csv]
            using System.Globalization;
            using Microsoft.ML;
            using Microsoft.ML.Data;

            var mlContext = new MLContext();
            ITransformer model = mlContext.Model.Load(Path.Combine(AppContext.BaseDirectory, "model.zip"), out _);
            // The engine owns the model: disposing it deletes the temporary copy of the ONNX graph that loading made.
            using var engine = mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);

            IEnumerable<float[]> rows = args.Length > 0
                ? File.ReadLines(args[0]).Where(line => line.Length > 0)
                    .Select(line => line.Split(',').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray())
                : [new float[FEATURE_COUNT]];
            foreach (float[] features in rows)
            {
                ModelOutput prediction = engine.Predict(new ModelInput { Features = features });
                Console.WriteLine($"{prediction.PredictedClass}\t{prediction.Score.Max().ToString("0.0000", CultureInfo.InvariantCulture)}");
            }

            public class ModelInput
            {
                [VectorType(FEATURE_COUNT)]
                public float[] Features { get; set; } = [];
            }

            public class ModelOutput
            {
                public string PredictedClass { get; set; } = "";
                public float[] Score { get; set; } = [];
            }

            """.Replace("FEATURE_COUNT", featureCount.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    private static string ImagesProgram(ImageSpec images) => """
        // Written by mlnet-sparsity. Predicts the class of each image file given, with the model in model.zip: the
        // images are read as the tool read them to train it (resized to HEIGHT×WIDTH, COLOUR, pixels / 255).
        // Usage: dotnet run -- image.png [image.jpg ...]
        using System.Globalization;
        using Microsoft.ML;
        using Microsoft.ML.Data;
        using Microsoft.ML.Transforms.Image;

        var mlContext = new MLContext();
        // Disposing the loaded chain deletes the temporary copy of the ONNX graph that loading made.
        using var model = (TransformerChain<ITransformer>)mlContext.Model.Load(Path.Combine(AppContext.BaseDirectory, "model.zip"), out _);
        var files = mlContext.Data.LoadFromEnumerable(args.Select(path => new ModelInput { ImagePath = Path.GetFullPath(path) }));
        IEstimator<ITransformer> pixels = mlContext.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(mlContext.Transforms.ResizeImages("Image", WIDTH, HEIGHT));
        GRAYSCALE
        pixels = pixels.Append(mlContext.Transforms.ExtractPixels("Features", "Image", ImagePixelExtractingEstimator.ColorBits.CHANNELS,
            interleavePixelColors: true, scaleImage: 1f / 255));
        var scored = model.Transform(pixels.Fit(files).Transform(files));
        foreach (ModelOutput prediction in mlContext.Data.CreateEnumerable<ModelOutput>(scored, reuseRowObject: false))
            Console.WriteLine($"{prediction.PredictedClass}\t{prediction.Score.Max().ToString("0.0000", CultureInfo.InvariantCulture)}");

        public class ModelInput
        {
            public string ImagePath { get; set; } = "";
        }

        public class ModelOutput
        {
            public string PredictedClass { get; set; } = "";
            public float[] Score { get; set; } = [];
        }

        """.Replace("HEIGHT", images.Height.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
        .Replace("WIDTH", images.Width.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
        .Replace("COLOUR", images.Color ? "RGB" : "grey", StringComparison.Ordinal)
        .Replace("GRAYSCALE", images.Color ? "" : "pixels = pixels.Append(mlContext.Transforms.ConvertToGrayscale(\"Image\"));", StringComparison.Ordinal)
        .Replace("CHANNELS", images.Color ? "Rgb" : "Red", StringComparison.Ordinal);
}
