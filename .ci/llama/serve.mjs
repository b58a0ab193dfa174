// A small OpenAI-compatible chat server over node-llama-cpp (llama.cpp), for the slow tests
// and benchmarks/llm_yield.py: POST /v1/chat/completions (usage and finish_reason as OpenAI
// reports them), GET /v1/models and GET /props (the served context size, as llama.cpp's
// own server reports it). One request at a time: the model runs on one thread.
//
//   node serve.mjs --model FILE.gguf [--port 0] [--ctx 2048] [--threads 1]
//
// Prints "listening <port>" on stdout once the model is loaded.
import http from "node:http";
import path from "node:path";
import { getLlama, LlamaChatSession } from "node-llama-cpp";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const modelPath = arg("model");
const nCtx = Number(arg("ctx", "2048"));
const threads = Number(arg("threads", "1"));
const modelId = arg("id", path.basename(modelPath || "model", ".gguf"));

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: nCtx, threads, sequences: 1 });

// One sequence for every request: llama.cpp keeps its evaluated tokens, so a prompt that
// shares a prefix with the previous one (the same system prompt and rules) evaluates only the
// rest. The usage reported is still the whole prompt, as OpenAI and llama.cpp's server report it.
const sequence = context.getSequence();
let busy = Promise.resolve();
const served = { requests: 0, prompt_tokens: 0, completion_tokens: 0 };

function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

function error(res, status, type, message, extra = {}) {
  send(res, status, { error: { code: status, type, message, ...extra } });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on("data", (c) => parts.push(c));
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

function history(messages) {
  return messages.map((m) =>
    m.role === "assistant" ? { type: "model", response: [m.content] } : { type: m.role, text: m.content }
  );
}

async function complete(body) {
  const messages = body.messages || [];
  const last = messages[messages.length - 1];
  if (!last || last.role !== "user") throw Object.assign(new Error("the last message must be a user turn"), { status: 400 });
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? 256;
  const session = new LlamaChatSession({ contextSequence: sequence, autoDisposeSequence: false });
  session.setChatHistory(history(messages.slice(0, -1)));
  const all = [...history(messages), { type: "model", response: [] }];
  const { contextText } = session.chatWrapper.generateContextState({ chatHistory: all });
  const promptTokens = contextText.tokenize(model.tokenizer).length;
  if (promptTokens + maxTokens > nCtx) {
    throw Object.assign(
      new Error(`the request exceeds the available context size (${promptTokens} prompt tokens + ${maxTokens} to generate > n_ctx ${nCtx}), try increasing it`),
      { status: 400, type: "exceed_context_size_error", extra: { n_prompt_tokens: promptTokens, n_ctx: nCtx } }
    );
  }
  const before = sequence.tokenMeter.getState();
  const started = Date.now();
  const out = await session.promptWithMeta(last.content, {
    maxTokens,
    temperature: body.temperature ?? 0.7,
    seed: body.seed ?? 0,
  });
  const used = sequence.tokenMeter.diff(before);
  session.dispose({ disposeSequence: false });
  served.requests += 1;
  served.prompt_tokens += promptTokens;
  served.completion_tokens += used.usedOutputTokens;
  process.stderr.write(`chat: ${promptTokens} prompt tokens (${used.usedInputTokens} evaluated), ${used.usedOutputTokens} completion, ${Date.now() - started} ms\n`);
  return {
    id: `chatcmpl-${Date.now()}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: modelId,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: out.responseText },
        finish_reason: out.stopReason === "maxTokens" ? "length" : "stop",
      },
    ],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: used.usedOutputTokens,
      total_tokens: promptTokens + used.usedOutputTokens,
    },
  };
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === "GET" && req.url === "/props") {
      return send(res, 200, { default_generation_settings: { n_ctx: nCtx }, total_slots: 1, model_path: modelPath });
    }
    if (req.method === "GET" && req.url === "/stats") {
      return send(res, 200, served);
    }
    if (req.method === "GET" && req.url === "/v1/models") {
      return send(res, 200, { object: "list", data: [{ id: modelId, object: "model", meta: { n_ctx_train: model.trainContextSize } }] });
    }
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      return error(res, 404, "not_found_error", `no route ${req.method} ${req.url}`);
    }
    const body = JSON.parse(await readBody(req));
    const run = busy.then(() => complete(body));
    busy = run.catch(() => undefined);
    send(res, 200, await run);
  } catch (exc) {
    error(res, exc.status || 500, exc.type || "server_error", String(exc.message || exc), exc.extra || {});
  }
});

server.listen(Number(arg("port", "0")), "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
