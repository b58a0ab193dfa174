"""The commented ``darwin.toml`` that ``darwin init`` writes; a test checks it parses to the defaults."""

DEFAULT_TOML = """\
# darwin.toml: the configuration of darwin-bot. Every key is optional.

[evolution]
population = 10          # agents per generation (survivors + offspring)
survivors = 4            # top-k kept after each generation
generations = 3          # generations per `darwin run`
mutation_rate = 0.3      # chance that each chunk of a file is rewritten (at least one is)
crossover_rate = 0.0     # share of offspring made by merging two parents
selection = "tournament" # or "dgm": score x 1/(1 + children), as the Darwin Goedel Machine
tournament_size = 3
seed = 0                 # seeds selection, the heuristic mutator and training
evolvable = ["seed/"]    # the only paths a mutation may change
max_file_lines = 800
repair_attempts = 1      # LLM repairs of a failed validation or smoke test
branch_prefix = "darwin/"

[budget]
preset = "tiny"          # tiny | paper | nanogpt (see seed/train.py)
iters = 100              # fixed training iterations per evaluation (tiny, on CPU) ...
# seconds = 300.0        # ... or wall-clock seconds from process start (paper/nanogpt on a GPU)
repeats = 3              # runs of the baseline and of a champion candidate
significance = 0.05      # one-sided test a champion must pass against the baseline
smoke_iters = 12         # smoke-test iterations: past the warmup, so the decay branch runs too
data = "data/shakespeare_char"
max_cost_ratio = 1.5     # an iteration budget's run may take this many times the seed's mean
                         # training (and scoring) CPU time (wall time on a GPU); past it,
                         # over_budget (ranks last, its perplexity shown); docs/budget.md
seconds_cost_ratio = 1.05  # the same for a seconds budget (its wall time varies far less)
curve = [0.25, 0.5, 0.75]  # the program saves a checkpoint at these fractions of the budget;
                         # the harness scores each: the trusted learning curve (docs/results.md)
# confirm_iters = 500    # promote only if the gain also holds at this longer budget ...
# confirm_seconds = 300.0  # ... or this one (set at most one)
# confirm_repeats = 3    # seeds at the confirmation budget (default: repeats)
# confirm_preset = ""    # default: preset

[search]                 # how a generation spends its runs across budgets (docs/configuration.md)
schedule = "flat"        # flat: every offspring at the search budget | halving: successive halving
rungs = [1, 2, 5]        # halving: each rung's budget, in multiples of the search budget
keep = 0.5               # halving: the share of a rung's offspring that trains at the next rung

[fitness]                # fitness = -w_ppl * rel. perplexity change + w_mfu * rel. MFU change
perplexity_weight = 1.0
mfu_weight = 0.0         # MFU counts the program's own reported tokens: opt in to rank on it
time_to_loss_weight = 0.0  # + w * (1 - the budget fraction at which the trusted curve first
                         # reaches the seed's final held-out loss); measured, not reported

[llm]
backend = "auto"         # auto: openai when OPENAI_API_KEY or base_url is set, else heuristic
model = "gpt-4o-mini"
base_url = ""            # any OpenAI-compatible server: vLLM, Ollama, llama.cpp
temperature = 0.7        # not sent to reasoning models (gpt-5*, o1/o3/o4*): they take none
max_tokens = 4096        # completion budget; sent as max_completion_tokens where accepted
reasoning_effort = ""    # reasoning models: minimal | low | medium | high ("": the default)
context_tokens = 0       # the model's window; 0: the server's report, else the model's known one
timeout_s = 120.0
max_retries = 4
max_reply_chars = 60000
script = ""              # JSONL replies for backend = "scripted"
# prices = { "gpt-4o-mini" = [0.00015, 0.0006] }   # USD per 1k prompt, completion tokens
# max_usd = 5.0          # stop mutating before the LLM spend of this evolution passes $5
# max_usd_per_generation = 0.5
# models = [             # several endpoints; each mutation's model is picked by UCB1 on gain per $
#   { model = "gpt-4o-mini" },
#   { model = "qwen2.5-coder", base_url = "http://localhost:8000/v1", api_key_env = "VLLM_KEY" },
# ]

[sandbox]
backend = "auto"         # auto | bwrap | unshare | none (none runs agent code unconfined)
timeout_s = 900.0        # the wall limit when nothing tighter applies
smoke_timeout_s = 120.0
allowance_s = 5.0        # a seconds budget counts from the process start (start-up included);
                         # the process is killed at seconds + this (saving, the kill's slack)
memory_mb = 8192
max_procs = 256

[forge]
kind = "local"           # local (files under path) | github
repository = ""          # owner/name; default $GITHUB_REPOSITORY
base_url = ""            # GitHub Enterprise API URL
path = ".darwin/forge"
default_branch = ""      # default: the repository's
max_open_prs = 20
automerge = false        # merge the champion's PR when it passes the statistical gate

[memory]
path = "memory"
digest_tokens = 1500

[program]                # the program under evolution; see `darwin check`
contract = "darwin"      # darwin (seed/, DARWIN_* variables) | nanogpt (karpathy/nanoGPT as it is)
"""
