using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Microsoft.ML.Sparsity.Distributed.Tests")]
