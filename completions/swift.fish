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
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l loss-impl -d 'Cross-entropy over the vocabulary: chunked (logits kept 16-bit, fp32 a chunk at a time) or full (transformers\' default fp32 upcast)' -r -f -a "chunked\t''
full\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l gpus -d 'Number of GPUs the job is spread over' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l zero -d 'DeepSpeed ZeRO stage for multi-GPU runs' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l effective-batch -d 'Sequences per optimizer step the planner aims for under `--method auto`' -r
complete -c swift -n "__fish_swift_using_subcommand estimate-vram" -l budget -d 'Memory available to the job: a size (24GiB, 16GB, 80G) or `auto` (the free memory of the best GPU, else available RAM)' -r
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
complete -c swift -n "__fish_swift_using_subcommand estimate" -l loss-impl -d 'Cross-entropy over the vocabulary: chunked (logits kept 16-bit, fp32 a chunk at a time) or full (transformers\' default fp32 upcast)' -r -f -a "chunked\t''
full\t''"
complete -c swift -n "__fish_swift_using_subcommand estimate" -l gpus -d 'Number of GPUs the job is spread over' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l zero -d 'DeepSpeed ZeRO stage for multi-GPU runs' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l effective-batch -d 'Sequences per optimizer step the planner aims for under `--method auto`' -r
complete -c swift -n "__fish_swift_using_subcommand estimate" -l budget -d 'Memory available to the job: a size (24GiB, 16GB, 80G) or `auto` (the free memory of the best GPU, else available RAM)' -r
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
complete -c swift -n "__fish_swift_using_subcommand infer" -l adapter -d 'A PEFT LoRA adapter folder applied without merging (repeatable)' -r -F
complete -c swift -n "__fish_swift_using_subcommand infer" -s p -l prompt -d 'The prompt (otherwise read from stdin when it is not a terminal)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l system -d 'A system message for the chat template' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l template -d 'Use a built-in chat template instead of the model\'s (chatml, llama3, mistral, qwen, ...)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l max-new-tokens -d 'Most tokens to generate (default: until the end of the context window)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l temperature -d 'Sampling temperature; 0 = greedy. Default: the model\'s generation_config.json when it asks for sampling, else 0 (greedy)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l top-k -d 'Sample only among the K most likely tokens (0 = off; default: generation_config.json, else off)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l top-p -d 'Nucleus sampling: the smallest set of tokens with mass >= P (1 = off; default: generation_config.json, else off)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l min-p -d 'Drop tokens less likely than P times the most likely one (0 = off)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l repetition-penalty -d 'Penalise tokens already seen, as transformers does (1 = off; default: generation_config.json, else off)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l seed -d 'Seed of the sampler: the same seed gives the same text' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l stop -d 'Stop when the text contains this string (repeatable; the string is not printed)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -s t -l threads -d 'CPU threads for the model (default: all cores)' -r
complete -c swift -n "__fish_swift_using_subcommand infer" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand infer" -l raw -d 'Feed the prompt as is, without the chat template'
complete -c swift -n "__fish_swift_using_subcommand infer" -l ignore-eos -d 'Do not stop at end-of-sequence tokens (for benchmarks)'
complete -c swift -n "__fish_swift_using_subcommand infer" -l json -d 'Print one JSON object (text, finish_reason, token counts, speed) instead of streaming'
complete -c swift -n "__fish_swift_using_subcommand infer" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand infer" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand infer" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand infer" -s h -l help -d 'Print help'
complete -c swift -n "__fish_swift_using_subcommand infer" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand completions" -l color -d 'When to use colours (NO_COLOR is respected under `auto`)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c swift -n "__fish_swift_using_subcommand completions" -s q -l quiet -d 'Print only results and errors'
complete -c swift -n "__fish_swift_using_subcommand completions" -s v -l verbose -d 'Say more (repeat for more detail)'
complete -c swift -n "__fish_swift_using_subcommand completions" -l no-progress -d 'Do not draw progress bars'
complete -c swift -n "__fish_swift_using_subcommand completions" -s h -l help -d 'Print help'
complete -c swift -n "__fish_swift_using_subcommand completions" -s V -l version -d 'Print version'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer completions help" -f -a "download" -d 'Fetch a model or dataset from the Hugging Face Hub or ModelScope'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer completions help" -f -a "estimate-vram" -d 'Predict the peak memory of a job and decide whether it fits'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer completions help" -f -a "infer" -d 'Generate from the terminal, or serve an OpenAI-compatible API'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c swift -n "__fish_swift_using_subcommand help; and not __fish_seen_subcommand_from download estimate-vram infer completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
