using Microsoft.ML.Data;
using Microsoft.ML.Sparsity.Network;
using Microsoft.ML.Sparsity.Training;
using Microsoft.ML.Sparsity.FrequencyDomain;
using Xunit;

namespace Microsoft.ML.Sparsity.Tests.FrequencyDomain;

/// <summary>The transform in ML.NET pipelines: image files through ImageAnalytics, and in front of the network trainer.</summary>
public sealed class FrequencyDomainImageTests : IDisposable
{
    private readonly MLContext _context = new(seed: 1);
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("sparsity-images-");

    public void Dispose() => _folder.Delete(recursive: true);

    private sealed class ImageFile
    {
        public string Path { get; set; } = "";
        public string Label { get; set; } = "";
    }

    [Fact]
    public void Image_files_go_through_LoadImages_ResizeImages_ExtractPixels_into_the_transform_planar_and_interleaved()
    {
        // Six 12×10 RGB images (PNG is lossless): horizontal stripes or vertical stripes, in random colours.
        var random = new Random(2);
        var files = new List<ImageFile>();
        var pixels = new List<byte[]>();
        for (int i = 0; i < 6; i++)
        {
            bool horizontal = i % 2 == 0;
            var (r, g, b) = ((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
            var bgra = new byte[12 * 10 * 4];
            for (int y = 0; y < 10; y++)
            for (int x = 0; x < 12; x++)
            {
                bool on = horizontal ? y % 2 == 0 : x % 2 == 0;
                int p = (y * 12 + x) * 4;
                (bgra[p], bgra[p + 1], bgra[p + 2], bgra[p + 3]) = on ? (b, g, r, (byte)255) : ((byte)0, (byte)0, (byte)0, (byte)255);
            }
            string path = Path.Combine(_folder.FullName, $"image{i}.png");
            using (var image = MLImage.CreateFromPixels(12, 10, MLPixelFormat.Bgra32, bgra)) image.Save(path);
            files.Add(new ImageFile { Path = path, Label = horizontal ? "horizontal" : "vertical" });
            pixels.Add(bgra);
        }
        var data = _context.Data.LoadFromEnumerable(files);

        foreach (bool interleave in new[] { false, true })
        {
            var pipeline = _context.Transforms.LoadImages("Image", _folder.FullName, nameof(ImageFile.Path))
                .Append(_context.Transforms.ResizeImages("Image", 12, 10))
                .Append(_context.Transforms.ExtractPixels("Features", "Image", interleavePixelColors: interleave, scaleImage: 1f / 255))
                .Append(_context.Transforms.ConvertToFrequencyDomain(blockSize: 4));
            var model = pipeline.Fit(data);
            var transform = model.LastTransformer;
            Assert.Equal(interleave, transform.InterleavedPixelColors);
            Assert.Equal([10, 12, 3], transform.InputShape);
            var output = model.Transform(data);
            Assert.Equal([3, 3, 48], ((VectorDataViewType)output.Schema["Features"].Type).Dimensions.ToArray());
            var rows = output.GetColumn<VBuffer<float>>("Features").Select(v => v.DenseValues().ToArray()).ToArray();
            Assert.Equal(6, rows.Length);
            for (int i = 0; i < 6; i++)
            {
                // The inverse gives back the file's pixels (in the layout ExtractPixels gave), up to rounding.
                var image = transform.Inverse(rows[i]);
                for (int y = 0; y < 10; y++)
                for (int x = 0; x < 12; x++)
                for (int c = 0; c < 3; c++)
                {
                    float expected = pixels[i][(y * 12 + x) * 4 + 2 - c] / 255f;   // BGRA → R, G, B
                    float actual = interleave ? image[(y * 12 + x) * 3 + c] : image[c * 120 + y * 12 + x];
                    Assert.True(Math.Abs(expected - actual) <= 1e-4, $"image {i}, pixel ({y}, {x}), colour {c}: {expected} vs {actual}");
                }
            }
        }
    }

    private sealed class Example
    {
        [VectorType(16, 16, 1)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    [Fact]
    public void Workout_fit_on_enumerable_data_a_frequency_domain_network_and_evaluate_it()
    {
        // 16×16 grayscale images, three classes: a bright square in the top-left, a bright square in the bottom-right,
        // or horizontal stripes; noise on every pixel.
        var random = new Random(4);
        Example Make(int i)
        {
            int kind = i % 3;
            var image = new float[256];
            for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
            {
                bool on = kind switch { 0 => y < 8 && x < 8, 1 => y >= 8 && x >= 8, _ => y % 4 < 2 };
                image[y * 16 + x] = Math.Clamp((on ? 0.8f : 0.2f) + (float)(random.NextDouble() - 0.5) * 0.3f, 0, 1);
            }
            return new Example { Features = image, Label = kind switch { 0 => "top-left", 1 => "bottom-right", _ => "stripes" } };
        }
        var train = _context.Data.LoadFromEnumerable(Enumerable.Range(0, 300).Select(Make).ToList());
        var test = _context.Data.LoadFromEnumerable(Enumerable.Range(0, 90).Select(Make).ToList());

        var pipeline = _context.Transforms.Conversion.MapValueToKey("Label")
            .Append(_context.Transforms.ConvertToFrequencyDomain(new FrequencyDomainEstimator.Options { BlockSize = 4, Selection = FrequencyChannelSelection.LowFrequency }))
            .Append(_context.MulticlassClassification.Trainers.NeuralNetwork(new NeuralNetworkMulticlassTrainer.Options
            {
                // A convolution straight on the 4×4 block grid: the transform's output dimensions give it its input shape.
                Layers = [Layers.Conv2d(8, 3, padding: 1), Layers.ReLU(), Layers.Flatten(), Layers.Dense(16), Layers.ReLU()],
                Epochs = 10, BatchSize = 16, Seed = 3, NumberOfThreads = 2,
                Optimizer = new SgdOptimizerOptions { LearningRate = 0.05f, Momentum = 0.9f },
            }));
        var model = pipeline.Fit(train);
        Assert.Equal([4, 4, 4], model.LastTransformer.InputShape);
        var metrics = _context.MulticlassClassification.Evaluate(model.Transform(test));
        Assert.True(metrics.MicroAccuracy >= 0.95, $"accuracy {metrics.MicroAccuracy:P1}");
    }
}
