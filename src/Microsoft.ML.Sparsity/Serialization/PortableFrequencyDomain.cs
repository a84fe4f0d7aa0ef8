using Microsoft.ML.Sparsity.Export;
using Microsoft.ML.Sparsity.Export.Onnx;
using Microsoft.ML.Sparsity.FrequencyDomain;
using static Microsoft.ML.Sparsity.Export.OnnxGraphBuilder;

namespace Microsoft.ML.Sparsity.Serialization;

/// <summary>
/// The portable form of a <see cref="FrequencyDomainTransformer"/> (<see cref="PortableModel"/>): <c>ApplyOnnxModel</c>
/// runs the transform's ONNX nodes (<see cref="FrequencyDomainOnnx"/>) on one unbatched image (<c>[height·width·channels]</c>,
/// in the input column's layout) and gives the output as <c>[H'/B, W'/B, channels]</c>, channels-last like the
/// transformer's, so the column has the same dimensions; the ONNX output has a name of its own (an ONNX graph cannot
/// give a value under its input's name), so <c>CopyColumns</c> writes it to the output column (hiding an input column
/// of that name, as the transformer does) and <c>DropColumns</c> hides it.
/// </summary>
internal static class PortableFrequencyDomain
{
    private const string OnnxOutput = "__SparsityFrequencyDomain";

    /// <summary>Writes the portable chain of <paramref name="transform"/> into <paramref name="ctx"/>.</summary>
    public static void Save(FrequencyDomainTransformer transform, ModelSaveContext ctx) =>
        PortableModel.Save(transform, Onnx(transform), transform.InputColumnName, transform.Dct.ImageLength,
            (ml, onnxPath) => ml.Transforms.ApplyOnnxModel([OnnxOutput], [transform.InputColumnName], onnxPath)
                .Append(ml.Transforms.CopyColumns(transform.OutputColumnName, OnnxOutput))
                .Append(ml.Transforms.DropColumns(OnnxOutput)),
            ctx);

    /// <summary>The unbatched ONNX graph the portable chain runs: the image in, the normalised channels <c>[H'/B, W'/B, K]</c> out.</summary>
    internal static ModelProto Onnx(FrequencyDomainTransformer transform)
    {
        var builder = new OnnxGraphBuilder();
        string input = builder.ReserveName(transform.InputColumnName);
        builder.ReserveName(OnnxOutput);
        var graph = builder.Graph;
        graph.Name = "frequency_domain";
        graph.Input.Add(ValueInfo(input, TensorProto.Types.DataType.Float, transform.Dct.ImageLength));
        var shape = transform.OutputShape;
        string nchw = FrequencyDomainOnnx.Add(builder, transform, input);
        string channelsLast = builder.AddNode("Transpose", builder.UniqueName("dct.channels_last"), [nchw], Ints("perm", 0, 2, 3, 1));
        builder.AddNode("Reshape", OnnxOutput, [channelsLast, builder.AddInt64Initializer("dct.output.shape", shape[0], shape[1], shape[2])]);
        graph.Output.Add(ValueInfo(OnnxOutput, TensorProto.Types.DataType.Float, shape[0], shape[1], shape[2]));
        var model = new ModelProto
        {
            IrVersion = OnnxExporter.IrVersion,
            ProducerName = OnnxExporter.ProducerName,
            ProducerVersion = ModelFile.PackageVersion,
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OnnxExporter.OpsetVersion });
        return model;
    }
}
