// Runs ONNX models in ONNX Runtime (onnxruntime-node, CPU) for the Microsoft.ML.Sparsity export tests.
//
//   node run.mjs JOBS.json RESULTS.json
//
// JOBS.json is an array of jobs: { "model": "m.onnx", "input": "x.f32", "shape": [64, 784], "inputName": "features" }
// ("inputName" is optional: the model's first input by default). "input" holds the float32 values, little-endian,
// row-major, nothing else. Relative paths are relative to JOBS.json's folder.
// RESULTS.json receives one entry per job, in order:
//   { "inputNames": [...], "outputNames": [...], "outputs": { "name": { "type": "float32", "dims": [...], "data": [...] } } }
// int64 outputs are written as JSON numbers. A job that fails stops the run with exit code 1 and the error on stderr.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';

const [jobsPath, resultsPath] = process.argv.slice(2);
if (!jobsPath || !resultsPath) {
  console.error('usage: node run.mjs JOBS.json RESULTS.json');
  process.exit(2);
}

const jobsDir = path.dirname(path.resolve(jobsPath));
const jobs = JSON.parse(await readFile(jobsPath, 'utf8'));
const results = [];
for (const [index, job] of jobs.entries()) {
  const modelPath = path.resolve(jobsDir, job.model);
  try {
    const bytes = await readFile(path.resolve(jobsDir, job.input));
    const count = job.shape.reduce((a, d) => a * d, 1);
    if (bytes.length !== count * 4) {
      throw new Error(`input has ${bytes.length} bytes; shape [${job.shape}] needs ${count * 4}`);
    }
    // Copy into an aligned buffer: a file buffer may start at any byte offset.
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(bytes);
    const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'] });
    const feeds = { [job.inputName ?? session.inputNames[0]]: new ort.Tensor('float32', data, job.shape) };
    const fetched = await session.run(feeds);
    const outputs = {};
    for (const name of session.outputNames) {
      const tensor = fetched[name];
      const values = tensor.type === 'int64' ? Array.from(tensor.data, Number) : Array.from(tensor.data);
      outputs[name] = { type: tensor.type, dims: tensor.dims, data: values };
    }
    results.push({ inputNames: session.inputNames, outputNames: session.outputNames, outputs });
    await session.release();
  } catch (error) {
    console.error(`job ${index} (${modelPath}): ${error?.stack ?? error}`);
    process.exit(1);
  }
}
await writeFile(resultsPath, JSON.stringify(results));
