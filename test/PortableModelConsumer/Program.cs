// Loads a model zip with ML.NET alone, scores a CSV whose columns are the model's saved input columns, appends
// MapKeyToValue to the predicted key, and writes one line per row: key, label text, scores (tab-separated), after
// two header lines describing the Score and PredictedLabel columns.
// Usage: PortableModelConsumer MODEL.zip DATA.csv OUT.tsv
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length != 3)
{
    Console.Error.WriteLine("Usage: PortableModelConsumer MODEL.zip DATA.csv OUT.tsv");
    return 2;
}
var ml = new MLContext();
using var model = (IDisposable)ml.Model.Load(args[0], out var inputSchema);
var columns = new List<TextLoader.Column>();
int index = 0;
foreach (var column in inputSchema)
{
    if (column.IsHidden) continue;
    int width = column.Type is VectorDataViewType v ? v.Size : 1;
    var item = column.Type is VectorDataViewType vector ? vector.ItemType : column.Type;
    var kind = item == NumberDataViewType.Single ? DataKind.Single : item is TextDataViewType ? DataKind.String
        : throw new NotSupportedException($"Input column '{column.Name}' has type {column.Type}.");
    columns.Add(new TextLoader.Column(column.Name, kind, index, index + width - 1));
    index += width;
}
var data = ml.Data.LoadFromTextFile(args[1], [.. columns], separatorChar: ',');
var scored = ((ITransformer)model).Transform(data);
var withText = ml.Transforms.Conversion.MapKeyToValue("PredictedLabelText", "PredictedLabel").Fit(scored).Transform(scored);

using var output = new StreamWriter(args[2]);
var score = withText.Schema["Score"];
var predicted = withText.Schema["PredictedLabel"];
var keyValues = default(VBuffer<ReadOnlyMemory<char>>);
predicted.Annotations.GetValue("KeyValues", ref keyValues);
output.WriteLine($"Score\t{score.Type}");
output.WriteLine($"PredictedLabel\t{predicted.Type}\t{string.Join("|", keyValues.DenseValues())}");
using var cursor = withText.GetRowCursor([score, predicted, withText.Schema["PredictedLabelText"]]);
var getScore = cursor.GetGetter<VBuffer<float>>(score);
var getKey = cursor.GetGetter<uint>(predicted);
var getText = cursor.GetGetter<ReadOnlyMemory<char>>(withText.Schema["PredictedLabelText"]);
VBuffer<float> scores = default;
uint key = 0;
ReadOnlyMemory<char> text = default;
while (cursor.MoveNext())
{
    getScore(ref scores);
    getKey(ref key);
    getText(ref text);
    output.WriteLine(string.Join('\t', new[] { key.ToString(CultureInfo.InvariantCulture), text.ToString() }
        .Concat(scores.DenseValues().Select(s => s.ToString("R", CultureInfo.InvariantCulture)))));
}
return 0;
