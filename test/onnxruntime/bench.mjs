// Inference throughput of ONNX models in ONNX Runtime (onnxruntime-node, CPU), for the benchmark harness.
//
//   node bench.mjs JOBS.json THREADS SECONDS
//
// JOBS.json is an array of { "name": "...", "model": "m.onnx", "features": 784, "batch": 1 }. For each job the model
// runs on random input of shape [batch, features] for about SECONDS after a warm-up; one JSON line is printed:
// [{ "name": ..., "batch": ..., "samplesPerSecond": ..., "microsecondsPerCall": ... }, ...]
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';

const [jobsPath, threadsArg, secondsArg] = process.argv.slice(2);
if (!jobsPath) {
  console.error('usage: node bench.mjs JOBS.json THREADS SECONDS');
  process.exit(2);
}
const threads = Number(threadsArg ?? 2);
const seconds = Number(secondsArg ?? 3);
const jobsDir = path.dirname(path.resolve(jobsPath));
const jobs = JSON.parse(await readFile(jobsPath, 'utf8'));
const results = [];
for (const job of jobs) {
  const session = await ort.InferenceSession.create(path.resolve(jobsDir, job.model), {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const data = new Float32Array(job.batch * job.features);
  for (let i = 0; i < data.length; i++) data[i] = Math.random();
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [job.batch, job.features]) };
  const warmUntil = performance.now() + Math.min(500, seconds * 250);
  while (performance.now() < warmUntil) await session.run(feeds);
  let calls = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    await session.run(feeds);
    calls++;
  }
  const elapsed = (performance.now() - start) / 1000;
  results.push({ name: job.name, batch: job.batch, samplesPerSecond: calls * job.batch / elapsed, microsecondsPerCall: elapsed * 1e6 / calls });
  await session.release();
}
console.log(JSON.stringify(results));
