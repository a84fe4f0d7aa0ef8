using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML.Sparsity.Export.Onnx;
using Microsoft.ML.Sparsity.Network;
using static Microsoft.ML.Sparsity.Export.OnnxGraphBuilder;

namespace Microsoft.ML.Sparsity.Export;

/// <summary>What the exported graph makes of the network's outputs.</summary>
internal enum OnnxHead
{
    /// <summary>Multiclass: <c>probabilities</c> (softmax over the classes) and <c>predicted_label</c> (the most probable class's index).</summary>
    Softmax,
    /// <summary>Binary classification on one logit: <c>score</c> (the logit), <c>probability</c> (its sigmoid) and <c>predicted_label</c> (1 when the logit is positive, else 0).</summary>
    Sigmoid,
    /// <summary>Regression on one output: <c>score</c>.</summary>
    Identity,
}

/// <summary>
/// Writes a trained network (a multiclass or binary classifier, or a regression model) as an ONNX model (IR version 7, opset 13) that ONNX Runtime, and so ML.NET's
/// <c>ApplyOnnxModel</c>, can run.
/// </summary>
/// <remarks>
/// <para>The graph has one input, <c>features</c>: float32 <c>[batch, InputSize]</c>, each row one example's features
/// flattened in the engine's order (channels-last, <c>[height, width, channels]</c> for images), as ML.NET feeds a
/// vector column. A multiclass classifier (<see cref="OnnxHead.Softmax"/>) has two outputs: <c>probabilities</c>,
/// float32 <c>[batch, classes]</c> (the softmax of the network's logits), and <c>predicted_label</c>, int64
/// <c>[batch]</c> (the index of the largest probability, the first one on ties; int64 is what ONNX ArgMax produces). A
/// binary classifier (<see cref="OnnxHead.Sigmoid"/>) has <c>score</c>, float32 <c>[batch, 1]</c> (the logit),
/// <c>probability</c>, float32 <c>[batch, 1]</c> (its sigmoid), and <c>predicted_label</c>, int64 <c>[batch]</c> (1 when
/// the logit is positive, else 0). A regression model (<see cref="OnnxHead.Identity"/>) has <c>score</c>, float32
/// <c>[batch, 1]</c>.</para>
/// <para>ONNX convolutions, pooling and batch normalisation work on NCHW tensors, so the graph reshapes the features
/// to the image and transposes to NCHW before the first such layer, keeps NCHW through consecutive convolutional
/// layers, and transposes back to channels-last only where the values are flattened (before a dense layer, a
/// flatten or the logits), so dense weights apply unchanged. A transpose that would not move any value (one channel,
/// or a 1×1 image) becomes a reshape. Convolution weights are permuted from the engine's <c>[out, kh, kw, in]</c> to
/// ONNX's <c>[out, in, kh, kw]</c>. A pruned weight whose non-zeros with their indices take fewer bytes than its dense
/// values is stored sparse, as Constant nodes holding sparse tensors, which ONNX Runtime makes dense when it loads the
/// model; see <see cref="OnnxGraphBuilder.AddWeight"/>.</para>
/// <para>Metadata (<c>metadata_props</c>): <c>class_names</c> (a JSON array, when the model has class names),
/// <c>input_shape</c> (a JSON array, the per-example shape the features are flattened from) and <c>producer</c>.</para>
/// </remarks>
internal static class OnnxExporter
{
    public const string InputName = "features";
    public const string ProbabilitiesName = "probabilities";
    public const string PredictedLabelName = "predicted_label";
    public const string ScoreName = "score";
    public const string ProbabilityName = "probability";
    public const string BatchDimension = "batch";
    public const string ProducerName = "Microsoft.ML.Sparsity";
    public const long IrVersion = 7;
    public const long OpsetVersion = 13;

    /// <summary>
    /// Writes <paramref name="network"/> to <paramref name="output"/> as an ONNX model. The whole model is built in
    /// memory first: nothing is written when the network cannot be exported.
    /// </summary>
    /// <param name="network">The classifier network; its last layer's outputs are the logits.</param>
    /// <param name="classNames">The class names (one per output), stored in the model's metadata; or null.</param>
    /// <param name="output">A writable stream; it is written to and left open.</param>
    /// <param name="producerVersion">The producing library's version, stored as <c>producer_version</c>.</param>
    /// <param name="frequencyDomain">A frequency-domain transform in front of the network, exported as its first nodes; the graph then takes the images.</param>
    /// <param name="head">What the graph makes of the network's outputs.</param>
    /// <exception cref="NotSupportedException">A layer has no ONNX equivalent here; the message names it.</exception>
    public static void Export(SequentialNetwork network, IReadOnlyList<string>? classNames, Stream output, string producerVersion,
        FrequencyDomain.FrequencyDomainTransformer? frequencyDomain = null, OnnxHead head = OnnxHead.Softmax)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanWrite) throw new ArgumentException("The output stream is not writable.", nameof(output));
        BuildModel(network, classNames, producerVersion, frequencyDomain, head).WriteTo(output);
    }

    /// <summary>The ONNX model of <paramref name="network"/>; see <see cref="Export"/>.</summary>
    public static ModelProto BuildModel(SequentialNetwork network, IReadOnlyList<string>? classNames, string producerVersion,
        FrequencyDomain.FrequencyDomainTransformer? frequencyDomain = null, OnnxHead head = OnnxHead.Softmax)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(producerVersion);
        int classes = network.OutputSize;
        if (classNames is not null && classNames.Count != classes)
            throw new ArgumentException($"{classNames.Count} class names were given; the network has {classes} outputs.", nameof(classNames));
        if (head != OnnxHead.Softmax && classes != 1)
            throw new ArgumentException($"A {head} head takes one network output; the network has {classes}.", nameof(head));

        var builder = new OnnxGraphBuilder();
        builder.ReserveName(InputName);
        builder.ReserveName(ProbabilitiesName);
        builder.ReserveName(PredictedLabelName);
        builder.ReserveName(ScoreName);
        builder.ReserveName(ProbabilityName);
        var graph = builder.Graph;
        graph.Name = "sparse_network";
        int inputSize = frequencyDomain?.Dct.ImageLength ?? network.InputSize;
        int[] inputShape = frequencyDomain is null ? network.InputShape : [.. frequencyDomain.InputShape];
        graph.Input.Add(ValueInfo(InputName, TensorProto.Types.DataType.Float, BatchDimension, inputSize));

        var value = frequencyDomain is null
            ? new Value(InputName, Layout.Flat, network.InputShape)
            : new Value(FrequencyDomainOnnx.Add(builder, frequencyDomain, InputName), Layout.Nchw, [.. frequencyDomain.OutputShape]);
        foreach (var layer in network.Layers) value = AddLayer(builder, layer, value);

        string logits = ToFlat(builder, value, "logits");
        string outputs = AddHead(builder, head, logits, classes);

        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = ProducerName,
            ProducerVersion = producerVersion,
            DocString = $"{head switch { OnnxHead.Softmax => "Classifier", OnnxHead.Sigmoid => "Binary classifier", _ => "Regression" }}: " +
                        $"'{InputName}' float32 [batch, {inputSize}] (features flattened from {Engine.Shape.Format(inputShape)}, channels-last) -> {outputs}.",
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OpsetVersion });
        if (classNames is not null) AddMetadata(model, "class_names", JsonSerializer.Serialize(classNames));
        AddMetadata(model, "input_shape", JsonSerializer.Serialize(inputShape));
        AddMetadata(model, "producer", ProducerName + " " + producerVersion);
        return model;
    }

    /// <summary>The head's nodes and graph outputs after the flat logits; returns the outputs as the doc string lists them.</summary>
    private static string AddHead(OnnxGraphBuilder builder, OnnxHead head, string logits, int classes)
    {
        var graph = builder.Graph;
        var float32 = TensorProto.Types.DataType.Float;
        switch (head)
        {
            case OnnxHead.Softmax:
                builder.AddNode("Softmax", ProbabilitiesName, [logits], Int("axis", 1));
                builder.AddNode("ArgMax", PredictedLabelName, [ProbabilitiesName], Int("axis", 1), Int("keepdims", 0));
                graph.Output.Add(ValueInfo(ProbabilitiesName, float32, BatchDimension, classes));
                graph.Output.Add(ValueInfo(PredictedLabelName, TensorProto.Types.DataType.Int64, BatchDimension));
                return $"'{ProbabilitiesName}' float32 [batch, {classes}], '{PredictedLabelName}' int64 [batch]";
            case OnnxHead.Sigmoid:
                builder.AddNode("Identity", ScoreName, [logits]);
                builder.AddNode("Sigmoid", ProbabilityName, [ScoreName]);
                string positive = builder.AddNode("Greater", builder.UniqueName("positive"), [ScoreName, builder.AddInitializer("zero", [0f])]);
                string asInt = builder.AddNode("Cast", builder.UniqueName("positive.int64"), [positive], Int("to", (long)TensorProto.Types.DataType.Int64));
                builder.AddNode("Reshape", PredictedLabelName, [asInt, builder.AddInt64Initializer("predicted_label.shape", -1)]);
                graph.Output.Add(ValueInfo(ScoreName, float32, BatchDimension, 1));
                graph.Output.Add(ValueInfo(ProbabilityName, float32, BatchDimension, 1));
                graph.Output.Add(ValueInfo(PredictedLabelName, TensorProto.Types.DataType.Int64, BatchDimension));
                return $"'{ScoreName}' float32 [batch, 1] (logit), '{ProbabilityName}' float32 [batch, 1], '{PredictedLabelName}' int64 [batch]";
            default:
                builder.AddNode("Identity", ScoreName, [logits]);
                graph.Output.Add(ValueInfo(ScoreName, float32, BatchDimension, 1));
                return $"'{ScoreName}' float32 [batch, 1]";
        }
    }

    private static void AddMetadata(ModelProto model, string key, string value) =>
        model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });

    /// <summary>Adds the nodes of one layer; returns its output.</summary>
    private static Value AddLayer(OnnxGraphBuilder builder, Layer layer, Value input)
    {
        string name = layer.Name;
        switch (layer)
        {
            case DenseLayer dense:
            {
                string x = ToFlat(builder, input, name + ".flat");
                var inputs = new List<string> { x, builder.AddWeight(dense.Weight.Name, dense.Weight.Value, dense.Outputs, dense.Inputs) };
                if (dense.Bias is not null) inputs.Add(builder.AddInitializer(dense.Bias.Name, dense.Bias.Value, dense.Outputs));
                return new Value(builder.AddNode("Gemm", builder.UniqueName(name), inputs, Int("transB", 1)), Layout.Flat, layer.OutputShape);
            }
            case Conv2dLayer conv:
            {
                string x = ToNchw(builder, input, name + ".nchw");
                int k = conv.KernelSize, channels = layer.InputShape[2];
                var inputs = new List<string>
                {
                    x,
                    builder.AddWeight(conv.Weight.Name, ToOihw(conv.Weight.Value, conv.OutChannels, k, channels), conv.OutChannels, channels, k, k),
                };
                if (conv.Bias is not null) inputs.Add(builder.AddInitializer(conv.Bias.Name, conv.Bias.Value, conv.OutChannels));
                string y = builder.AddNode("Conv", builder.UniqueName(name), inputs,
                    Ints("kernel_shape", k, k), Ints("strides", conv.Stride, conv.Stride),
                    Ints("pads", conv.Padding, conv.Padding, conv.Padding, conv.Padding), Ints("dilations", 1, 1), Int("group", 1));
                return new Value(y, Layout.Nchw, layer.OutputShape);
            }
            case Pool2dLayer pool:
            {
                string x = ToNchw(builder, input, name + ".nchw");
                string op = pool.Pooling == PoolingKind.Max ? "MaxPool" : "AveragePool";
                string y = builder.AddNode(op, builder.UniqueName(name), [x],
                    Ints("kernel_shape", pool.KernelSize, pool.KernelSize), Ints("strides", pool.Stride, pool.Stride));
                return new Value(y, Layout.Nchw, layer.OutputShape);
            }
            case GlobalAveragePoolLayer:
            {
                string x = ToNchw(builder, input, name + ".nchw");
                string pooled = builder.AddNode("GlobalAveragePool", builder.UniqueName(name + ".nc11"), [x]);
                return new Value(builder.AddNode("Flatten", builder.UniqueName(name), [pooled], Int("axis", 1)), Layout.Flat, layer.OutputShape);
            }
            case BatchNormLayer norm:
                return AddBatchNorm(builder, norm, input);
            case ActivationLayer activation:
            {
                AttributeProto[] attributes = activation.Activation == ActivationKind.LeakyReLU ? [Float("alpha", ActivationLayer.LeakySlope)] : [];
                string op = activation.Activation switch
                {
                    ActivationKind.ReLU => "Relu",
                    ActivationKind.LeakyReLU => "LeakyRelu",
                    ActivationKind.Tanh => "Tanh",
                    ActivationKind.Sigmoid => "Sigmoid",
                    _ => throw new NotSupportedException($"Layer '{name}': the activation {activation.Activation} cannot be exported to ONNX."),
                };
                return input with { Name = builder.AddNode(op, builder.UniqueName(name), [input.Name], attributes) };
            }
            case FlattenLayer:
                return new Value(ToFlat(builder, input, name), Layout.Flat, layer.OutputShape);
            case DropoutLayer:
                // Identity at inference.
                return input;
            default:
                throw new NotSupportedException($"Layer '{name}' ({layer.GetType().Name}) cannot be exported to ONNX.");
        }
    }

    /// <summary>
    /// Images (in NCHW) use ONNX BatchNormalization with the running statistics; other shapes normalise their last
    /// dimension, which channels-last layout makes a broadcast Mul and Add with the folded scale and shift.
    /// </summary>
    private static Value AddBatchNorm(OnnxGraphBuilder builder, BatchNormLayer norm, Value input)
    {
        string name = norm.Name;
        int c = norm.Channels;
        if (norm.InputShape.Length == 3)
        {
            string x = ToNchw(builder, input, name + ".nchw");
            string[] inputs =
            [
                x,
                builder.AddInitializer(norm.Gamma.Name, norm.Gamma.Value, c),
                builder.AddInitializer(norm.Beta.Name, norm.Beta.Value, c),
                builder.AddInitializer(name + ".running_mean", norm.RunningMean, c),
                builder.AddInitializer(name + ".running_var", norm.RunningVariance, c),
            ];
            string y = builder.AddNode("BatchNormalization", builder.UniqueName(name), inputs, Float("epsilon", norm.Epsilon));
            return new Value(y, Layout.Nchw, norm.OutputShape);
        }

        // The engine's inference formula: y = x·scale + shift.
        var scale = new float[c];
        var shift = new float[c];
        for (int i = 0; i < c; i++)
        {
            scale[i] = norm.Gamma.Value[i] / MathF.Sqrt(norm.RunningVariance[i] + norm.Epsilon);
            shift[i] = norm.Beta.Value[i] - norm.RunningMean[i] * scale[i];
        }
        string channelsLast = ToChannelsLast(builder, input, name + ".channels_last");
        string scaled = builder.AddNode("Mul", builder.UniqueName(name + ".scaled"), [channelsLast, builder.AddInitializer(name + ".scale", scale, c)]);
        string shifted = builder.AddNode("Add", builder.UniqueName(name), [scaled, builder.AddInitializer(name + ".shift", shift, c)]);
        return new Value(shifted, norm.OutputShape.Length == 1 ? Layout.Flat : Layout.ChannelsLast, norm.OutputShape);
    }

    /// <summary>[out, kh, kw, in] → [out, in, kh, kw].</summary>
    private static float[] ToOihw(float[] weight, int outChannels, int k, int inChannels)
    {
        var oihw = new float[weight.Length];
        for (int o = 0; o < outChannels; o++)
        for (int y = 0; y < k; y++)
        for (int x = 0; x < k; x++)
        for (int i = 0; i < inChannels; i++)
            oihw[((o * inChannels + i) * k + y) * k + x] = weight[((o * k + y) * k + x) * inChannels + i];
        return oihw;
    }

    /// <summary>The value as [batch, size] in the engine's (channels-last) order.</summary>
    private static string ToFlat(OnnxGraphBuilder builder, Value value, string stem)
    {
        string source = value.Layout switch
        {
            Layout.Flat => value.Name,
            Layout.ChannelsLast => value.Name,
            Layout.Nchw when TransposeIsReshape(value.Shape) => value.Name,
            Layout.Nchw => builder.AddNode("Transpose", builder.UniqueName(stem + ".nhwc"), [value.Name], Ints("perm", 0, 2, 3, 1)),
            _ => throw new InvalidOperationException($"Unknown layout {value.Layout}."),
        };
        return value.Layout == Layout.Flat ? source : builder.AddNode("Flatten", builder.UniqueName(stem), [source], Int("axis", 1));
    }

    /// <summary>The value as [batch, ...shape] (channels-last, any rank).</summary>
    private static string ToChannelsLast(OnnxGraphBuilder builder, Value value, string stem)
    {
        if (value.Layout == Layout.ChannelsLast || value.Shape.Length == 1 && value.Layout == Layout.Flat) return value.Name;
        if (value.Layout == Layout.Nchw) throw new InvalidOperationException("An NCHW image is normalised by BatchNormalization.");
        return Reshape(builder, value.Name, stem, [-1, .. value.Shape.Select(d => (long)d)]);
    }

    /// <summary>The image value as [batch, channels, height, width].</summary>
    private static string ToNchw(OnnxGraphBuilder builder, Value value, string stem)
    {
        if (value.Layout == Layout.Nchw) return value.Name;
        int[] s = value.Shape;
        if (s.Length != 3) throw new InvalidOperationException($"A {Engine.Shape.Format(s)} value is not an image.");
        if (TransposeIsReshape(s))
            return Reshape(builder, value.Name, stem, -1, s[2], s[0], s[1]);
        string nhwc = value.Layout == Layout.ChannelsLast ? value.Name : Reshape(builder, value.Name, stem + ".nhwc", -1, s[0], s[1], s[2]);
        return builder.AddNode("Transpose", builder.UniqueName(stem), [nhwc], Ints("perm", 0, 3, 1, 2));
    }

    /// <summary>Whether NHWC ↔ NCHW leaves the values in place: one channel, or a single pixel.</summary>
    private static bool TransposeIsReshape(int[] imageShape) => imageShape[2] == 1 || imageShape[0] * imageShape[1] == 1;

    private static string Reshape(OnnxGraphBuilder builder, string input, string stem, params long[] shape) =>
        builder.AddNode("Reshape", builder.UniqueName(stem), [input, builder.AddInt64Initializer(stem + ".shape", shape)]);

    private enum Layout
    {
        /// <summary>[batch, size], values in the engine's order.</summary>
        Flat,
        /// <summary>[batch, ...shape], the engine's per-example shape (rank other than 1).</summary>
        ChannelsLast,
        /// <summary>[batch, channels, height, width] for an image of engine shape [height, width, channels].</summary>
        Nchw,
    }

    /// <summary>A graph value: its name, how its dimensions are laid out, and the engine's per-example shape.</summary>
    private sealed record Value(string Name, Layout Layout, int[] Shape);
}
