# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_swift_global_optspecs
    string join \n q/quiet v/verbose color= no-progress h/help V/version
end

function __fish_swift_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_swift_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_swift_using_subcommand
    set -l cmd (__fish_swift_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c swift -n "__fish_swift_needs_command" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_needs_command" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_needs_command" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_needs_command" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c swift -n "__fish_swift_needs_command" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_needs_command" -f -a "download" -d 'Fetch a model or dataset from the Hugging Face Hub or ModelScope'
complete -c swift -n "__fish_swift_needs_command" -f -a "estimate-vram" -d 'Predict the peak memory of a job and decide whether it fits'
complete -c swift -n "__fish_swift_needs_command" -f -a "estimate" -d 'Predict the peak memory of a job and decide whether it fits'
complete -c swift -n "__fish_swift_needs_command" -f -a "infer" -d 'Generate from the terminal, or serve an OpenAI-compatible API'
complete -c swift -n "__fish_swift_needs_command" -f -a "finetune" -d 'Supervised fine-tuning: LoRA, QLoRA on a GGUF, or full'
complete -c swift -n "__fish_swift_needs_command" -f -a "dpo" -d 'Preference alignment: DPO, IPO, ORPO, SimPO, KTO (LoRA or full)'
complete -c swift -n "__fish_swift_needs_command" -f -a "merge" -d 'Fold LoRA adapters into a base model, or convert between HF and GGUF'
complete -c swift -n "__fish_swift_needs_command" -f -a "export" -d 'Fold LoRA adapters into a base model, or convert between HF and GGUF'
complete -c swift -n "__fish_swift_needs_command" -f -a "eval" -d 'Measure a model: perplexity, multiple-choice accuracy, exact match'
complete -c swift -n "__fish_swift_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c swift -n "__fish_swift_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c swift -n "__fish_swift_using_subcommand download" -l model -d 'Model id (same as the positional id)' -r
complete -c swift -n "__fish_swift_using_subcommand download" -l dataset -d 'Dataset short name (see --list-datasets) or dataset id' -r
complete -c swift -n "__fish_swift_using_subcommand download" -l hub -d 'Which hub (default: the id\'s `hf::`/`ms::` prefix, else USE_HF, else hf)' -r -f -a "hf\t'The Hugging Face Hub (HF_ENDPOINT)'
modelscope\t'ModelScope (MODELSCOPE_DOMAIN)'"
complete -c swift -n "__fish_swift_using_subcommand download" -l repo-type -d 'Repository type of the positional id' -r -f -a "model\t''
dataset\t''"
complete -c swift -n "__fish_swift_using_subcommand download" -l revision -d 'Branch, tag or commit (default main on hf, master on ModelScope)' -r
complete -c swift -n "__fish_swift_using_subcommand download" -l include -d 'Only files matching this glob (repeatable; `*` crosses `/`)' -r
complete -c swift -n "__fish_swift_using_subcommand download" -l exclude -d 'Skip files matching this glob (repeatable)' -r
complete -c swift -n "__fish_swift_using_subcommand download" -l local-dir -d 'Write plain files into DIR instead of the cache' -r -F
complete -c swift -n "__fish_swift_using_subcommand download" -l cache-dir -d 'Cache root (default HF_HUB_CACHE, or MODELSCOPE_CACHE for ModelScope)' -r -F
complete -c swift -n "__fish_swift_using_subcommand download" -l token -d 'Access token (default HF_TOKEN / MODELSCOPE_API_TOKEN)' -r
complete -c swift -n "__fish_swift_using_subcommand download" -l endpoint -d 'Hub endpoint URL (default HF_ENDPOINT / MODELSCOPE_DOMAIN)' -r
complete -c swift -n "__fish_swift_using_subcommand download" -l max-workers -d 'Files fetched at once' -r
complete -c swift -n "__fish_swift_using_subcommand download" -l connections -d 'Byte-range connections per large file' -r
complete -c swift -n "__fish_swift_using_subcommand download" -l part-size-mb -d 'Smallest byte range per connection, in MiB' -r
complete -c swift -n "__fish_swift_using_subcommand download" -l registry -d 'A user dataset registry file (default SWIFT_DATASET_REGISTRY or ~/.config/swift/datasets.json)' -r -F
complete -c swift -n "__fish_swift_using_subcommand download" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand download" -l offline -d 'Resolve from the cache only (also HF_HUB_OFFLINE=1)'
complete -c swift -n "__fish_swift_using_subcommand download" -l force -d 'Download again even when the cache has the files'
complete -c swift -n "__fish_swift_using_subcommand download" -l json -d 'Print the result (snapshot path and files) as JSON on stdout'
complete -c swift -n "__fish_swift_using_subcommand download" -l list-datasets -d 'Print the dataset registry and exit'
complete -c swift -n "__fish_swift_using_subcommand download" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand download" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand download" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand download" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c swift -n "__fish_swift_using_subcommand download" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l model -d 'A model folder, a config.json, a .gguf file (only its header is read), or a hub id (`org/name`: only config.json is fetched). Without it, print the devices found' -r -F
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l method -d 'What the job is; `auto` lets the planner choose LoRA or QLoRA' -r -f -a "auto\t''
infer\t''
lora\t''
qlora\t''
full\t''
dpo-lora\t''
dpo-full\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l dtype -d 'Weight and activation dtype; `auto` picks bf16 where the device has it' -r -f -a "auto\t''
bf16\t''
f16\t''
f32\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l quant-bits -d 'Quantize the frozen linear weights: 4 (NF4, QLoRA) or 8' -r -f -a "4\t''
8\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l batch-size -d 'Sequences per device per step (default: the planner\'s choice under `--method auto`, else 1)' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l seq-len -l max-length -d 'Tokens per sequence (training) or prompt tokens (inference)' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l max-new-tokens -d 'Inference: tokens generated after the prompt' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l lora-rank -d 'LoRA rank' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l target-modules -d 'LoRA target modules, comma separated (q_proj,v_proj,...) or all-linear' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l gradient-checkpointing -d 'Recompute activations in backward (default: on; under `--method auto` only when needed)' -r -f -a "true\t''
false\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l optimizer -d 'Optimizer' -r -f -a "adamw\t''
adamw-8bit\t''
sgd\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l attention -d 'Attention implementation (eager materialises the score matrix)' -r -f -a "fused\t''
flash\t''
eager\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l lora-dropout -d 'LoRA dropout probability (above 0, peft keeps a dropped copy of each wrapped layer\'s input)' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l loss-impl -d 'Cross-entropy over the vocabulary in a PyTorch run: full (transformers\' default: the whole fp32 upcast, log-softmax and gradient; the default) or chunked (logits kept 16-bit, fp32 a chunk at a time, as torchtune / Liger / Unsloth do). swift\'s trainer fuses the head with the loss either way' -r -f -a "chunked\t''
full\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l device -d 'The device to plan for: auto (this machine\'s best: a CUDA GPU if one is found, Apple Metal, else the CPU), cpu, cuda or metal. A GPU that is not in this machine needs --budget' -r -f -a "auto\t''
cpu\t''
cuda\t''
metal\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l engine -d 'Whose memory to model: swift (its own trainer, the default on the CPU) or torch (a PyTorch run: transformers + peft, as ms-swift or TRL run it; the default on a GPU, since swift trains on the CPU only today)' -r -f -a "swift\t''
torch\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l gpus -d 'Number of GPUs the job is spread over' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l zero -d 'DeepSpeed ZeRO stage for multi-GPU runs' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l effective-batch -d 'Sequences per optimizer step the planner aims for under `--method auto`' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l budget -d 'Memory available to the job: a size (24GiB, 16GB, 80G) or `auto` (the free memory of the --device: a GPU\'s free memory, the CPU\'s available RAM). A size never changes the device' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l json -d 'Print a JSON object instead of a table'
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -s h -l help -d 'Print help'
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand estimate" -l model -d 'A model folder, a config.json, a .gguf file (only its header is read), or a hub id (`org/name`: only config.json is fetched). Without it, print the devices found' -r -F
complete -c swift -n "__fish_swift_using_subcommand estimate" -l method -d 'What the job is; `auto` lets the planner choose LoRA or QLoRA' -r -f -a "auto\t''
infer\t''
lora\t''
qlora\t''
full\t''
dpo-lora\t''
dpo-full\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate" -l dtype -d 'Weight and activation dtype; `auto` picks bf16 where the device has it' -r -f -a "auto\t''
bf16\t''
f16\t''
f32\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate" -l quant-bits -d 'Quantize the frozen linear weights: 4 (NF4, QLoRA) or 8' -r -f -a "4\t''
8\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate" -l batch-size -d 'Sequences per device per step (default: the planner\'s choice under `--method auto`, else 1)' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l seq-len -l max-length -d 'Tokens per sequence (training) or prompt tokens (inference)' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l max-new-tokens -d 'Inference: tokens generated after the prompt' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l lora-rank -d 'LoRA rank' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l target-modules -d 'LoRA target modules, comma separated (q_proj,v_proj,...) or all-linear' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l gradient-checkpointing -d 'Recompute activations in backward (default: on; under `--method auto` only when needed)' -r -f -a "true\t''
false\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate" -l optimizer -d 'Optimizer' -r -f -a "adamw\t''
adamw-8bit\t''
sgd\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate" -l attention -d 'Attention implementation (eager materialises the score matrix)' -r -f -a "fused\t''
flash\t''
eager\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate" -l lora-dropout -d 'LoRA dropout probability (above 0, peft keeps a dropped copy of each wrapped layer\'s input)' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l loss-impl -d 'Cross-entropy over the vocabulary in a PyTorch run: full (transformers\' default: the whole fp32 upcast, log-softmax and gradient; the default) or chunked (logits kept 16-bit, fp32 a chunk at a time, as torchtune / Liger / Unsloth do). swift\'s trainer fuses the head with the loss either way' -r -f -a "chunked\t''
full\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate" -l device -d 'The device to plan for: auto (this machine\'s best: a CUDA GPU if one is found, Apple Metal, else the CPU), cpu, cuda or metal. A GPU that is not in this machine needs --budget' -r -f -a "auto\t''
cpu\t''
cuda\t''
metal\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate" -l engine -d 'Whose memory to model: swift (its own trainer, the default on the CPU) or torch (a PyTorch run: transformers + peft, as ms-swift or TRL run it; the default on a GPU, since swift trains on the CPU only today)' -r -f -a "swift\t''
torch\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate" -l gpus -d 'Number of GPUs the job is spread over' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l zero -d 'DeepSpeed ZeRO stage for multi-GPU runs' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l effective-batch -d 'Sequences per optimizer step the planner aims for under `--method auto`' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l budget -d 'Memory available to the job: a size (24GiB, 16GB, 80G) or `auto` (the free memory of the --device: a GPU\'s free memory, the CPU\'s available RAM). A size never changes the device' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate" -l json -d 'Print a JSON object instead of a table'
complete -c swift -n "__fish_swift_using_subcommand estimate" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand estimate" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand estimate" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand estimate" -s h -l help -d 'Print help'
complete -c swift -n "__fish_swift_using_subcommand estimate" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand infer" -l model -d 'A model folder (config.json + safetensors + tokenizer), a .gguf file, or a hub id (`org/name`, `hf::org/name`, `ms::org/name`) fetched first' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l adapter -d 'A PEFT LoRA adapter folder, DIR or NAME=DIR, applied without merging (repeatable); with --serve each is served as model NAME (default: the folder name) beside the base model' -r -F
complete -c swift -n "__fish_swift_using_subcommand infer" -s p -l prompt -d 'The prompt (otherwise read from stdin when it is not a terminal)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l system -d 'A system message for the chat template' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l template -d 'Use a built-in chat template instead of the model\'s (chatml, llama3, mistral, qwen, ...)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l max-new-tokens -d 'Most tokens to generate (default: 1024 per chat answer; a one-shot prompt runs until the end of the context window)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l temperature -d 'Sampling temperature; 0 = greedy. Default: the model\'s generation_config.json, else 0.8 in the chat and greedy for a one-shot prompt' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l top-k -d 'Sample only among the K most likely tokens (0 = off; default: generation_config.json, else 40)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l top-p -d 'Nucleus sampling: the smallest set of tokens with mass >= P (1 = off; default: generation_config.json, else 0.9)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l min-p -d 'Drop tokens less likely than P times the most likely one (0 = off)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l repetition-penalty -d 'Penalise the tokens already in the context, as transformers does (1 = off; default: generation_config.json, else 1.1 when sampling)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l seed -d 'Seed of the sampler: the same seed gives the same text (default: a random one)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l stop -d 'Stop when the text contains this string (repeatable; the string is not printed)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -s t -l threads -d 'CPU threads for the model (default: all cores)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l host -d 'Address to listen on (loopback unless told otherwise)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l port -d 'Port to listen on; 0 picks a free one (the address is printed)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l api-key -d 'Require `Authorization: Bearer KEY` on /v1/*' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l served-model-name -d 'The id of the base model in /v1/models and requests (default: --model as given)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l max-batch -d 'Most sequences decoded together in one batch' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l queue-size -d 'Most requests waiting for a place in the batch; more are answered 429' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l max-body-bytes -d 'Largest request body in bytes; larger ones are answered 413' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l shutdown-grace -d 'Seconds in-flight requests may run after SIGINT / SIGTERM before they are cancelled' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand infer" -l raw -d 'Feed the prompt as is, without the chat template'
complete -c swift -n "__fish_swift_using_subcommand infer" -l ignore-eos -d 'Do not stop at end-of-sequence tokens (for benchmarks)'
complete -c swift -n "__fish_swift_using_subcommand infer" -l json -d 'Print one JSON object (text, finish_reason, token counts, speed) instead of streaming'
complete -c swift -n "__fish_swift_using_subcommand infer" -l serve -d 'Serve an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, /health) until SIGINT / SIGTERM'
complete -c swift -n "__fish_swift_using_subcommand infer" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand infer" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand infer" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand infer" -s h -l help -d 'Print help'
complete -c swift -n "__fish_swift_using_subcommand infer" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand finetune" -l model -d 'A model folder (config.json + safetensors + tokenizer), a .gguf file, or a hub id (`org/name`) fetched first' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l dataset -d 'Training data: a file (jsonl, json, csv, parquet) or folder, `PATH#N` to sample N rows (repeatable, mixed)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l val-dataset -d 'Validation data (otherwise --split-dataset-ratio of the training rows)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l split-dataset-ratio -d 'Fraction of the training rows held out for validation when no --val-dataset is given' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l columns -d 'JSON object mapping source column names to standard ones, e.g. \'{"question": "query", "answer": "response"}\'' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l max-length -d 'Longest sample (prompt + answer) in tokens' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l truncation-strategy -d 'What to do with samples over --max-length' -r -f -a "delete\t'Drop rows over --max-length'
left\t'Keep the end'
right\t'Keep the start'"
complete -c swift -n "__fish_swift_using_subcommand finetune" -l system -d 'A default system prompt for rows that have none' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l method -d 'Training method; `auto` asks the planner (its choice and reason are printed and kept in args.json)' -r -f -a "auto\t'Let the planner choose (LoRA, or QLoRA on a GGUF / a small device)'
lora\t''
qlora\t''
full\t''"
complete -c swift -n "__fish_swift_using_subcommand finetune" -l tuner -d 'What trains: LoRA adapters, or every weight (`full`)' -r -f -a "lora\t''
full\t''"
complete -c swift -n "__fish_swift_using_subcommand finetune" -l quant-bits -d 'QLoRA on a full-precision model: quantize the frozen base\'s decoder linears at load, 4 = NF4 (bitsandbytes\' 4-bit NormalFloat, blocks of 64), 8 = 8-bit blocks. Implies --method qlora; `auto` picks 4 when the planner chooses QLoRA. A GGUF trains on its own quantized weights' -r -f -a "4\t''
8\t''"
complete -c swift -n "__fish_swift_using_subcommand finetune" -l lora-rank -d 'LoRA rank' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l lora-alpha -d 'LoRA alpha (scale = alpha / rank, or alpha / sqrt(rank) with rsLoRA)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l lora-dropout -d 'Dropout on the LoRA input' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l target-modules -d 'Modules LoRA wraps: all-linear, or names (q_proj,k_proj,...)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l learning-rate -d 'Peak learning rate (default 1e-4 for LoRA, 1e-5 for full tuning)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l adam-beta1 -d 'AdamW beta1' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l adam-beta2 -d 'AdamW beta2' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l adam-epsilon -d 'AdamW epsilon' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l weight-decay -d 'AdamW decoupled weight decay (not on biases and norms)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l batch-size -d 'Sequences per forward pass (default: the planner\'s choice)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l gradient-accumulation-steps -d 'Forward passes per optimizer step (default: the planner\'s choice)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l lr-scheduler-type -d 'Learning-rate schedule after the warm-up' -r -f -a "cosine\t''
linear\t''
constant\t''"
complete -c swift -n "__fish_swift_using_subcommand finetune" -l warmup-ratio -d 'Warm-up as a fraction of the steps' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l warmup-steps -d 'Warm-up steps (overrides --warmup-ratio)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l max-grad-norm -d 'Clip the gradient norm to this (0 = off)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l num-train-epochs -d 'Passes over the training data' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l max-steps -d 'Optimizer steps (overrides --num-train-epochs)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l seed -d 'Seed of the LoRA init, the data order and dropout' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l logging-steps -d 'Log (logging.jsonl, TensorBoard) at step 1 and every N steps' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l eval-steps -d 'Evaluate every N steps (and at the end) when there is validation data' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l save-steps -d 'Write checkpoint-N/ every N steps (and at the end)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l save-total-limit -d 'Keep only the newest N checkpoints' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l resume-from-checkpoint -d 'Continue a run: a checkpoint folder, or `latest` in --output-dir' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l output-dir -d 'Where the adapter / weights, checkpoints and logs go' -r -F
complete -c swift -n "__fish_swift_using_subcommand finetune" -s t -l threads -d 'CPU threads (default: all cores)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l merge-output -d 'Where --merge writes the merged model [default: OUTPUT_DIR-merged.gguf for a GGUF, OUTPUT_DIR-merged for an HF folder]' -r -F
complete -c swift -n "__fish_swift_using_subcommand finetune" -l merge-format -d 'What --merge writes [default: gguf for a .gguf base (the tensors the adapter leaves alone keep the base\'s own types, so it decodes as fast as the base), hf otherwise]' -r -f -a "hf\t'A Hugging Face folder: safetensors shards, config, tokenizer'
gguf\t'One GGUF file for llama.cpp / Ollama'"
complete -c swift -n "__fish_swift_using_subcommand finetune" -l host -d 'Address --serve listens on [default: 127.0.0.1]' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l port -d 'Port --serve listens on; 0 picks a free one (the address is printed) [default: 8080]' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l api-key -d 'Require `Authorization: Bearer KEY` on /v1/* (with --serve)' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l served-model-name -d 'The served model\'s id in /v1/models and requests (with --serve) [default: the merged model]' -r
complete -c swift -n "__fish_swift_using_subcommand finetune" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand finetune" -l dedup -d 'Remove exact duplicate rows'
complete -c swift -n "__fish_swift_using_subcommand finetune" -l skip-bad-rows -d 'Skip and count malformed rows instead of stopping'
complete -c swift -n "__fish_swift_using_subcommand finetune" -l packing -d 'Pack short samples into rows of --max-length tokens'
complete -c swift -n "__fish_swift_using_subcommand finetune" -l loss-on-all-tokens -d 'Train on every token (pre-training style), not only assistant turns'
complete -c swift -n "__fish_swift_using_subcommand finetune" -l use-rslora -d 'Rank-stabilised LoRA (scale alpha / sqrt(rank))'
complete -c swift -n "__fish_swift_using_subcommand finetune" -l json -d 'Print a JSON summary on stdout at the end'
complete -c swift -n "__fish_swift_using_subcommand finetune" -l merge -d 'After training, fold the adapter into the base model (at --merge-output, as --merge-format) and print where it is; finished stages are skipped when the same command runs again'
complete -c swift -n "__fish_swift_using_subcommand finetune" -l serve -d 'After merging, serve the merged model (OpenAI-compatible API, as `swift infer --serve`) until SIGINT / SIGTERM; implies --merge'
complete -c swift -n "__fish_swift_using_subcommand finetune" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand finetune" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand finetune" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand finetune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c swift -n "__fish_swift_using_subcommand finetune" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand dpo" -l model -d 'A model folder (config.json + safetensors + tokenizer), a .gguf file, or a hub id (`org/name`) fetched first' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l val-dataset -d 'Validation data (otherwise --split-dataset-ratio of the training rows)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l split-dataset-ratio -d 'Fraction of the training rows held out for validation when no --val-dataset is given' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l columns -d 'JSON object mapping source column names to standard ones, e.g. \'{"question": "query", "answer": "response"}\'' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l max-length -d 'Longest sample (prompt + answer) in tokens' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l truncation-strategy -d 'What to do with samples over --max-length' -r -f -a "delete\t'Drop rows over --max-length'
left\t'Keep the end'
right\t'Keep the start'"
complete -c swift -n "__fish_swift_using_subcommand dpo" -l system -d 'A default system prompt for rows that have none' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l loss -d 'The preference loss' -r -f -a "dpo\t'DPO, sigmoid loss (with --label-smoothing: conservative DPO)'
ipo\t'IPO: squared distance of the log-ratio margin to 1/(2 beta)'
orpo\t'ORPO: SFT on chosen plus beta times the odds-ratio term (no reference)'
simpo\t'SimPO: length-normalised, margin --simpo-gamma (no reference)'
kto\t'KTO: unpaired desirable / undesirable completions'"
complete -c swift -n "__fish_swift_using_subcommand dpo" -l beta -d 'Strength of the KL penalty (DPO/IPO/KTO), ORPO\'s lambda, SimPO\'s beta (default 0.1; 2.0 for SimPO)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l label-smoothing -d 'Conservative DPO / SimPO: probability the preference label is flipped' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l simpo-gamma -d 'SimPO\'s target reward margin' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l desirable-weight -d 'KTO: weight of desirable examples' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l undesirable-weight -d 'KTO: weight of undesirable examples' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l adapter -d 'Start the policy from this LoRA adapter (e.g. an SFT result); it keeps training' -r -F
complete -c swift -n "__fish_swift_using_subcommand dpo" -l ref-adapter -d 'The reference model is the base with this adapter (default: the base alone)' -r -F
complete -c swift -n "__fish_swift_using_subcommand dpo" -l tuner -d 'What trains: LoRA adapters, or every weight (`full`)' -r -f -a "lora\t''
full\t''"
complete -c swift -n "__fish_swift_using_subcommand dpo" -l lora-rank -d 'LoRA rank' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l lora-alpha -d 'LoRA alpha (scale = alpha / rank, or alpha / sqrt(rank) with rsLoRA)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l lora-dropout -d 'Dropout on the LoRA input' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l target-modules -d 'Modules LoRA wraps: all-linear, or names (q_proj,k_proj,...)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l adam-beta1 -d 'AdamW beta1' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l adam-beta2 -d 'AdamW beta2' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l adam-epsilon -d 'AdamW epsilon' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l gradient-accumulation-steps -d 'Forward passes per optimizer step (default: the planner\'s choice)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l lr-scheduler-type -d 'Learning-rate schedule after the warm-up' -r -f -a "cosine\t''
linear\t''
constant\t''"
complete -c swift -n "__fish_swift_using_subcommand dpo" -l warmup-ratio -d 'Warm-up as a fraction of the steps' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l warmup-steps -d 'Warm-up steps (overrides --warmup-ratio)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l max-grad-norm -d 'Clip the gradient norm to this (0 = off)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l max-steps -d 'Optimizer steps (overrides --num-train-epochs)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l seed -d 'Seed of the LoRA init, the data order and dropout' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l logging-steps -d 'Log (logging.jsonl, TensorBoard) at step 1 and every N steps' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l eval-steps -d 'Evaluate every N steps (and at the end) when there is validation data' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l save-steps -d 'Write checkpoint-N/ every N steps (and at the end)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l save-total-limit -d 'Keep only the newest N checkpoints' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l resume-from-checkpoint -d 'Continue a run: a checkpoint folder, or `latest` in --output-dir' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l output-dir -d 'Where the adapter / weights, checkpoints and logs go' -r -F
complete -c swift -n "__fish_swift_using_subcommand dpo" -s t -l threads -d 'CPU threads (default: all cores)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l dataset -d 'Preference data: a file (jsonl, json, csv, parquet) or folder, `PATH#N` to sample N rows (repeatable)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l learning-rate -d 'Peak learning rate (default 5e-5 for LoRA, 5e-7 for full tuning)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l weight-decay -d 'AdamW decoupled weight decay (not on biases and norms)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l batch-size -d 'Pairs per forward pass (each pair is two sequences; default: the planner\'s choice)' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l num-train-epochs -d 'Passes over the training data' -r
complete -c swift -n "__fish_swift_using_subcommand dpo" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand dpo" -l dedup -d 'Remove exact duplicate rows'
complete -c swift -n "__fish_swift_using_subcommand dpo" -l skip-bad-rows -d 'Skip and count malformed rows instead of stopping'
complete -c swift -n "__fish_swift_using_subcommand dpo" -l precompute-ref-logps -d 'Compute the reference log-probs once before training (no reference model kept during training; useful with --tuner full)'
complete -c swift -n "__fish_swift_using_subcommand dpo" -l use-rslora -d 'Rank-stabilised LoRA (scale alpha / sqrt(rank))'
complete -c swift -n "__fish_swift_using_subcommand dpo" -l json -d 'Print a JSON summary on stdout at the end'
complete -c swift -n "__fish_swift_using_subcommand dpo" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand dpo" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand dpo" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand dpo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c swift -n "__fish_swift_using_subcommand dpo" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand merge" -l model -d 'The base model: a Hugging Face folder, a .gguf file, or a hub id' -r -F
complete -c swift -n "__fish_swift_using_subcommand merge" -l adapter -d 'A peft LoRA adapter folder to fold in (repeat to stack several, applied in order)' -r -F
complete -c swift -n "__fish_swift_using_subcommand merge" -s o -l output -d 'Where to write: a folder (hf) or a file (gguf)' -r -F
complete -c swift -n "__fish_swift_using_subcommand merge" -l format -d 'Output format' -r -f -a "hf\t'A Hugging Face folder: safetensors shards, config, tokenizer'
gguf\t'One GGUF file for llama.cpp / Ollama'"
complete -c swift -n "__fish_swift_using_subcommand merge" -l dtype -d 'Weight type of a Hugging Face output [default: the base\'s; f32 for a GGUF base]' -r -f -a "f32\t''
f16\t''
bf16\t''"
complete -c swift -n "__fish_swift_using_subcommand merge" -l quant -d 'Weight type of the matrices in a GGUF output (norms stay f32)' -r -f -a "q4_0\t''
q4_1\t''
q8_0\t''
f16\t''
f32\t''"
complete -c swift -n "__fish_swift_using_subcommand merge" -l max-shard-size -d 'Largest safetensors shard of a Hugging Face output' -r
complete -c swift -n "__fish_swift_using_subcommand merge" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand merge" -l keep-types -d 'GGUF base to GGUF output: copy the tensors no adapter changes as the base stores them (its own types, bit for bit); --quant applies only to the changed ones'
complete -c swift -n "__fish_swift_using_subcommand merge" -l force -d 'Replace the output if it exists'
complete -c swift -n "__fish_swift_using_subcommand merge" -l json -d 'Print the result as JSON on stdout'
complete -c swift -n "__fish_swift_using_subcommand merge" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand merge" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand merge" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand merge" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c swift -n "__fish_swift_using_subcommand merge" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand export" -l model -d 'The base model: a Hugging Face folder, a .gguf file, or a hub id' -r -F
complete -c swift -n "__fish_swift_using_subcommand export" -l adapter -d 'A peft LoRA adapter folder to fold in (repeat to stack several, applied in order)' -r -F
complete -c swift -n "__fish_swift_using_subcommand export" -s o -l output -d 'Where to write: a folder (hf) or a file (gguf)' -r -F
complete -c swift -n "__fish_swift_using_subcommand export" -l format -d 'Output format' -r -f -a "hf\t'A Hugging Face folder: safetensors shards, config, tokenizer'
gguf\t'One GGUF file for llama.cpp / Ollama'"
complete -c swift -n "__fish_swift_using_subcommand export" -l dtype -d 'Weight type of a Hugging Face output [default: the base\'s; f32 for a GGUF base]' -r -f -a "f32\t''
f16\t''
bf16\t''"
complete -c swift -n "__fish_swift_using_subcommand export" -l quant -d 'Weight type of the matrices in a GGUF output (norms stay f32)' -r -f -a "q4_0\t''
q4_1\t''
q8_0\t''
f16\t''
f32\t''"
complete -c swift -n "__fish_swift_using_subcommand export" -l max-shard-size -d 'Largest safetensors shard of a Hugging Face output' -r
complete -c swift -n "__fish_swift_using_subcommand export" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand export" -l keep-types -d 'GGUF base to GGUF output: copy the tensors no adapter changes as the base stores them (its own types, bit for bit); --quant applies only to the changed ones'
complete -c swift -n "__fish_swift_using_subcommand export" -l force -d 'Replace the output if it exists'
complete -c swift -n "__fish_swift_using_subcommand export" -l json -d 'Print the result as JSON on stdout'
complete -c swift -n "__fish_swift_using_subcommand export" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand export" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand export" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c swift -n "__fish_swift_using_subcommand export" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand eval" -l model -d 'A model folder, a .gguf file, or a hub id (`org/name`, `hf::`, `ms::`)' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l adapter -d 'A PEFT LoRA adapter folder applied to --model (repeatable)' -r -F
complete -c swift -n "__fish_swift_using_subcommand eval" -l url -d 'Evaluate an OpenAI-compatible server instead (http://host:port/v1), through /v1/completions with echo + logprobs' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l served-model -d 'The model name to send to the server (default: the first of /v1/models)' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l api-key -d 'Bearer key for the server' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l tokenizer -d 'Tokenize here with this tokenizer (a model folder or .gguf) and send token ids; without it prompts go as text' -r -F
complete -c swift -n "__fish_swift_using_subcommand eval" -l task -d 'perplexity, multiple-choice or exact-match (repeatable, one per --dataset)' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l dataset -d 'The task\'s data file (repeatable)' -r -F
complete -c swift -n "__fish_swift_using_subcommand eval" -l tasks-file -d 'A JSON file listing tasks: [{"task": "multiple-choice", "dataset": "mmlu.jsonl", "name": "mmlu"}] (paths relative to the file)' -r -F
complete -c swift -n "__fish_swift_using_subcommand eval" -l limit -d 'Evaluate the first N documents of each task only' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l num-fewshot -d 'Few-shot examples before each question' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l fewshot-dataset -d 'Take few-shot examples from this file (a dev split: its first K), not from the evaluated file (K others drawn with --seed)' -r -F
complete -c swift -n "__fish_swift_using_subcommand eval" -l seed -d 'Seed of the few-shot draw' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l batch-size -d 'Documents scored together in one batch' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l max-length -d 'Perplexity: most tokens in one window (default: the model\'s context)' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l stride -d 'Perplexity: tokens scored per window (default: --max-length); smaller gives each token more context' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l max-new-tokens -d 'Exact match: most tokens generated per answer' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l answer-regex -d 'Exact match: the answer is this regex\'s first match (its first group); default: the last number in the text' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l stop -d 'Exact match: stop generating at this string (repeatable; added to "Question:", "</s>", "<|im_end|>")' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l output-dir -d 'Write results.json and one samples_<task>.jsonl per task here' -r -F
complete -c swift -n "__fish_swift_using_subcommand eval" -s t -l threads -d 'CPU threads for the model (default: all cores)' -r
complete -c swift -n "__fish_swift_using_subcommand eval" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand eval" -l json -d 'Print the results as one JSON object'
complete -c swift -n "__fish_swift_using_subcommand eval" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand eval" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand eval" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand eval" -s h -l help -d 'Print help'
complete -c swift -n "__fish_swift_using_subcommand eval" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand completions" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand completions" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand completions" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand completions" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand completions" -s h -l help -d 'Print help'
complete -c swift -n "__fish_swift_using_subcommand completions" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer finetune dpo merge eval completions help" -f -a "download" -d 'Fetch a model or dataset from the Hugging Face Hub or ModelScope'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer finetune dpo merge eval completions help" -f -a "estimate-vram" -d 'Predict the peak memory of a job and decide whether it fits'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer finetune dpo merge eval completions help" -f -a "infer" -d 'Generate from the terminal, or serve an OpenAI-compatible API'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer finetune dpo merge eval completions help" -f -a "finetune" -d 'Supervised fine-tuning: LoRA, QLoRA on a GGUF, or full'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer finetune dpo merge eval completions help" -f -a "dpo" -d 'Preference alignment: DPO, IPO, ORPO, SimPO, KTO (LoRA or full)'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer finetune dpo merge eval completions help" -f -a "merge" -d 'Fold LoRA adapters into a base model, or convert between HF and GGUF'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer finetune dpo merge eval completions help" -f -a "eval" -d 'Measure a model: perplexity, multiple-choice accuracy, exact match'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer finetune dpo merge eval completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer finetune dpo merge eval completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
