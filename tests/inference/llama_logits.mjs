// llama.cpp as an oracle for our GGUF files, through node-llama-cpp's prebuilt CPU binaries.
//
// Usage: node llama_logits.mjs INSTALL_DIR < request.json > answer.json
//   INSTALL_DIR: the folder `npm install node-llama-cpp` ran in (holds node_modules/node-llama-cpp)
//   request: [{"model": "F.gguf", "texts": [str, ...], "ids": [[int, ...], ...]}, ...]
//   answer:  [{"tokens": [[int, ...] per text], "logits": [[[float] * n_vocab per position] per ids row]}, ...]
// Many files in one call: starting llama.cpp (it probes which CPU build runs here) costs seconds.
// Each ids row is evaluated from an empty context; position t's logits predict token t + 1.
// build: "never" and gpu: false keep it on the prebuilt CPU binary: it never compiles nor downloads.
import path from "node:path";
import {pathToFileURL} from "node:url";

const installDir = process.argv[2];
const entry = path.join(installDir, "node_modules", "node-llama-cpp", "dist", "index.js");
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(entry).href);

async function logitsOf(model, rows) {
    if (!rows.length) return [];
    // node-llama-cpp keeps one context cell free (and erases the oldest tokens to get it), so a row
    // as long as the context would have its last position computed over a shifted window
    const cells = Math.max(...rows.map((row) => row.length)) + 1;
    const context = await model.createContext({contextSize: cells, batchSize: cells, threads: 1,
                                               flashAttention: false});
    const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
    const sequence = context.getSequence();
    const out = [];
    for (const row of rows) {
        await sequence.clearHistory();
        // logits: true is the model's raw vector at each position (no sampler in between), as a Map token → logit
        const items = row.map((token) => [token, {generateNext: {logits: true}}]);
        const results = await sequence.controlledEvaluate(items);
        out.push(results.map((result) => {
            const vector = new Array(vocab).fill(null);
            for (const [token, value] of result.next.logits) vector[token] = value;
            return vector;
        }));
    }
    await context.dispose();
    return out;
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const requests = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1});
const answers = [];
for (const request of requests) {
    const model = await llama.loadModel({modelPath: request.model, gpuLayers: 0});
    const tokens = (request.texts ?? []).map((text) => Array.from(model.tokenize(text, false)));
    answers.push({tokens, logits: await logitsOf(model, request.ids ?? [])});
    await model.dispose();
}
process.stdout.write(JSON.stringify(answers));
