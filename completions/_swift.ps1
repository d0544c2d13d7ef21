
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'swift' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'swift'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'swift' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('download', 'download', [CompletionResultType]::ParameterValue, 'Fetch a model or dataset from the Hugging Face Hub or ModelScope')
            [CompletionResult]::new('estimate-vram', 'estimate-vram', [CompletionResultType]::ParameterValue, 'Predict the peak memory of a job and decide whether it fits')
            [CompletionResult]::new('estimate', 'estimate', [CompletionResultType]::ParameterValue, 'Predict the peak memory of a job and decide whether it fits')
            [CompletionResult]::new('infer', 'infer', [CompletionResultType]::ParameterValue, 'Generate from the terminal, or serve an OpenAI-compatible API')
            [CompletionResult]::new('finetune', 'finetune', [CompletionResultType]::ParameterValue, 'Supervised fine-tuning: LoRA, QLoRA on a GGUF, or full')
            [CompletionResult]::new('dpo', 'dpo', [CompletionResultType]::ParameterValue, 'Preference alignment: DPO, IPO, ORPO, SimPO, KTO (LoRA or full)')
            [CompletionResult]::new('merge', 'merge', [CompletionResultType]::ParameterValue, 'Fold LoRA adapters into a base model, or convert between HF and GGUF')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Fold LoRA adapters into a base model, or convert between HF and GGUF')
            [CompletionResult]::new('eval', 'eval', [CompletionResultType]::ParameterValue, 'Measure a model: perplexity, multiple-choice accuracy, exact match')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'swift;download' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Model id (same as the positional id)')
            [CompletionResult]::new('--dataset', '--dataset', [CompletionResultType]::ParameterName, 'Dataset short name (see --list-datasets) or dataset id')
            [CompletionResult]::new('--hub', '--hub', [CompletionResultType]::ParameterName, 'Which hub (default: the id''s `hf::`/`ms::` prefix, else USE_HF, else hf)')
            [CompletionResult]::new('--repo-type', '--repo-type', [CompletionResultType]::ParameterName, 'Repository type of the positional id')
            [CompletionResult]::new('--revision', '--revision', [CompletionResultType]::ParameterName, 'Branch, tag or commit (default main on hf, master on ModelScope)')
            [CompletionResult]::new('--include', '--include', [CompletionResultType]::ParameterName, 'Only files matching this glob (repeatable; `*` crosses `/`)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'Skip files matching this glob (repeatable)')
            [CompletionResult]::new('--local-dir', '--local-dir', [CompletionResultType]::ParameterName, 'Write plain files into DIR instead of the cache')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache root (default HF_HUB_CACHE, or MODELSCOPE_CACHE for ModelScope)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Access token (default HF_TOKEN / MODELSCOPE_API_TOKEN)')
            [CompletionResult]::new('--endpoint', '--endpoint', [CompletionResultType]::ParameterName, 'Hub endpoint URL (default HF_ENDPOINT / MODELSCOPE_DOMAIN)')
            [CompletionResult]::new('--max-workers', '--max-workers', [CompletionResultType]::ParameterName, 'Files fetched at once')
            [CompletionResult]::new('--connections', '--connections', [CompletionResultType]::ParameterName, 'Byte-range connections per large file')
            [CompletionResult]::new('--part-size-mb', '--part-size-mb', [CompletionResultType]::ParameterName, 'Smallest byte range per connection, in MiB')
            [CompletionResult]::new('--registry', '--registry', [CompletionResultType]::ParameterName, 'A user dataset registry file (default SWIFT_DATASET_REGISTRY or ~/.config/swift/datasets.json)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--offline', '--offline', [CompletionResultType]::ParameterName, 'Resolve from the cache only (also HF_HUB_OFFLINE=1)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Download again even when the cache has the files')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result (snapshot path and files) as JSON on stdout')
            [CompletionResult]::new('--list-datasets', '--list-datasets', [CompletionResultType]::ParameterName, 'Print the dataset registry and exit')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;estimate-vram' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'A model folder, a config.json, a .gguf file (only its header is read), or a hub id (`org/name`: only config.json is fetched). Without it, print the devices found')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'What the job is; `auto` lets the planner choose LoRA or QLoRA')
            [CompletionResult]::new('--dtype', '--dtype', [CompletionResultType]::ParameterName, 'Weight and activation dtype; `auto` picks bf16 where the device has it')
            [CompletionResult]::new('--quant-bits', '--quant-bits', [CompletionResultType]::ParameterName, 'Quantize the frozen linear weights: 4 (NF4, QLoRA) or 8')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Sequences per device per step (default: the planner''s choice under `--method auto`, else 1)')
            [CompletionResult]::new('--seq-len', '--seq-len', [CompletionResultType]::ParameterName, 'Tokens per sequence (training) or prompt tokens (inference)')
            [CompletionResult]::new('--max-length', '--max-length', [CompletionResultType]::ParameterName, 'Tokens per sequence (training) or prompt tokens (inference)')
            [CompletionResult]::new('--max-new-tokens', '--max-new-tokens', [CompletionResultType]::ParameterName, 'Inference: tokens generated after the prompt')
            [CompletionResult]::new('--lora-rank', '--lora-rank', [CompletionResultType]::ParameterName, 'LoRA rank')
            [CompletionResult]::new('--target-modules', '--target-modules', [CompletionResultType]::ParameterName, 'LoRA target modules, comma separated (q_proj,v_proj,...) or all-linear')
            [CompletionResult]::new('--gradient-checkpointing', '--gradient-checkpointing', [CompletionResultType]::ParameterName, 'Recompute activations in backward (default: on; under `--method auto` only when needed)')
            [CompletionResult]::new('--optimizer', '--optimizer', [CompletionResultType]::ParameterName, 'Optimizer')
            [CompletionResult]::new('--attention', '--attention', [CompletionResultType]::ParameterName, 'Attention implementation (eager materialises the score matrix)')
            [CompletionResult]::new('--lora-dropout', '--lora-dropout', [CompletionResultType]::ParameterName, 'LoRA dropout probability (above 0, peft keeps a dropped copy of each wrapped layer''s input)')
            [CompletionResult]::new('--loss-impl', '--loss-impl', [CompletionResultType]::ParameterName, 'Cross-entropy over the vocabulary: chunked (logits kept 16-bit, fp32 a chunk at a time) or full (transformers'' default fp32 upcast)')
            [CompletionResult]::new('--gpus', '--gpus', [CompletionResultType]::ParameterName, 'Number of GPUs the job is spread over')
            [CompletionResult]::new('--zero', '--zero', [CompletionResultType]::ParameterName, 'DeepSpeed ZeRO stage for multi-GPU runs')
            [CompletionResult]::new('--effective-batch', '--effective-batch', [CompletionResultType]::ParameterName, 'Sequences per optimizer step the planner aims for under `--method auto`')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'Memory available to the job: a size (24GiB, 16GB, 80G) or `auto` (the free memory of the best GPU, else available RAM)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a JSON object instead of a table')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;estimate' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'A model folder, a config.json, a .gguf file (only its header is read), or a hub id (`org/name`: only config.json is fetched). Without it, print the devices found')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'What the job is; `auto` lets the planner choose LoRA or QLoRA')
            [CompletionResult]::new('--dtype', '--dtype', [CompletionResultType]::ParameterName, 'Weight and activation dtype; `auto` picks bf16 where the device has it')
            [CompletionResult]::new('--quant-bits', '--quant-bits', [CompletionResultType]::ParameterName, 'Quantize the frozen linear weights: 4 (NF4, QLoRA) or 8')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Sequences per device per step (default: the planner''s choice under `--method auto`, else 1)')
            [CompletionResult]::new('--seq-len', '--seq-len', [CompletionResultType]::ParameterName, 'Tokens per sequence (training) or prompt tokens (inference)')
            [CompletionResult]::new('--max-length', '--max-length', [CompletionResultType]::ParameterName, 'Tokens per sequence (training) or prompt tokens (inference)')
            [CompletionResult]::new('--max-new-tokens', '--max-new-tokens', [CompletionResultType]::ParameterName, 'Inference: tokens generated after the prompt')
            [CompletionResult]::new('--lora-rank', '--lora-rank', [CompletionResultType]::ParameterName, 'LoRA rank')
            [CompletionResult]::new('--target-modules', '--target-modules', [CompletionResultType]::ParameterName, 'LoRA target modules, comma separated (q_proj,v_proj,...) or all-linear')
            [CompletionResult]::new('--gradient-checkpointing', '--gradient-checkpointing', [CompletionResultType]::ParameterName, 'Recompute activations in backward (default: on; under `--method auto` only when needed)')
            [CompletionResult]::new('--optimizer', '--optimizer', [CompletionResultType]::ParameterName, 'Optimizer')
            [CompletionResult]::new('--attention', '--attention', [CompletionResultType]::ParameterName, 'Attention implementation (eager materialises the score matrix)')
            [CompletionResult]::new('--lora-dropout', '--lora-dropout', [CompletionResultType]::ParameterName, 'LoRA dropout probability (above 0, peft keeps a dropped copy of each wrapped layer''s input)')
            [CompletionResult]::new('--loss-impl', '--loss-impl', [CompletionResultType]::ParameterName, 'Cross-entropy over the vocabulary: chunked (logits kept 16-bit, fp32 a chunk at a time) or full (transformers'' default fp32 upcast)')
            [CompletionResult]::new('--gpus', '--gpus', [CompletionResultType]::ParameterName, 'Number of GPUs the job is spread over')
            [CompletionResult]::new('--zero', '--zero', [CompletionResultType]::ParameterName, 'DeepSpeed ZeRO stage for multi-GPU runs')
            [CompletionResult]::new('--effective-batch', '--effective-batch', [CompletionResultType]::ParameterName, 'Sequences per optimizer step the planner aims for under `--method auto`')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'Memory available to the job: a size (24GiB, 16GB, 80G) or `auto` (the free memory of the best GPU, else available RAM)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a JSON object instead of a table')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;infer' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'A model folder (config.json + safetensors + tokenizer), a .gguf file, or a hub id (`org/name`, `hf::org/name`, `ms::org/name`) fetched first')
            [CompletionResult]::new('--adapter', '--adapter', [CompletionResultType]::ParameterName, 'A PEFT LoRA adapter folder, DIR or NAME=DIR, applied without merging (repeatable); with --serve each is served as model NAME (default: the folder name) beside the base model')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'The prompt (otherwise read from stdin when it is not a terminal)')
            [CompletionResult]::new('--prompt', '--prompt', [CompletionResultType]::ParameterName, 'The prompt (otherwise read from stdin when it is not a terminal)')
            [CompletionResult]::new('--system', '--system', [CompletionResultType]::ParameterName, 'A system message for the chat template')
            [CompletionResult]::new('--template', '--template', [CompletionResultType]::ParameterName, 'Use a built-in chat template instead of the model''s (chatml, llama3, mistral, qwen, ...)')
            [CompletionResult]::new('--max-new-tokens', '--max-new-tokens', [CompletionResultType]::ParameterName, 'Most tokens to generate (default: until the end of the context window)')
            [CompletionResult]::new('--temperature', '--temperature', [CompletionResultType]::ParameterName, 'Sampling temperature; 0 = greedy. Default: the model''s generation_config.json when it asks for sampling, else 0 (greedy)')
            [CompletionResult]::new('--top-k', '--top-k', [CompletionResultType]::ParameterName, 'Sample only among the K most likely tokens (0 = off; default: generation_config.json, else off)')
            [CompletionResult]::new('--top-p', '--top-p', [CompletionResultType]::ParameterName, 'Nucleus sampling: the smallest set of tokens with mass >= P (1 = off; default: generation_config.json, else off)')
            [CompletionResult]::new('--min-p', '--min-p', [CompletionResultType]::ParameterName, 'Drop tokens less likely than P times the most likely one (0 = off)')
            [CompletionResult]::new('--repetition-penalty', '--repetition-penalty', [CompletionResultType]::ParameterName, 'Penalise tokens already seen, as transformers does (1 = off; default: generation_config.json, else off)')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed of the sampler: the same seed gives the same text')
            [CompletionResult]::new('--stop', '--stop', [CompletionResultType]::ParameterName, 'Stop when the text contains this string (repeatable; the string is not printed)')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'CPU threads for the model (default: all cores)')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'CPU threads for the model (default: all cores)')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Address to listen on (loopback unless told otherwise)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port to listen on; 0 picks a free one (the address is printed)')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'Require `Authorization: Bearer KEY` on /v1/*')
            [CompletionResult]::new('--served-model-name', '--served-model-name', [CompletionResultType]::ParameterName, 'The id of the base model in /v1/models and requests (default: --model as given)')
            [CompletionResult]::new('--max-batch', '--max-batch', [CompletionResultType]::ParameterName, 'Most sequences decoded together in one batch')
            [CompletionResult]::new('--queue-size', '--queue-size', [CompletionResultType]::ParameterName, 'Most requests waiting for a place in the batch; more are answered 429')
            [CompletionResult]::new('--max-body-bytes', '--max-body-bytes', [CompletionResultType]::ParameterName, 'Largest request body in bytes; larger ones are answered 413')
            [CompletionResult]::new('--shutdown-grace', '--shutdown-grace', [CompletionResultType]::ParameterName, 'Seconds in-flight requests may run after SIGINT / SIGTERM before they are cancelled')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Feed the prompt as is, without the chat template')
            [CompletionResult]::new('--ignore-eos', '--ignore-eos', [CompletionResultType]::ParameterName, 'Do not stop at end-of-sequence tokens (for benchmarks)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object (text, finish_reason, token counts, speed) instead of streaming')
            [CompletionResult]::new('--serve', '--serve', [CompletionResultType]::ParameterName, 'Serve an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, /health) until SIGINT / SIGTERM')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;finetune' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'A model folder (config.json + safetensors + tokenizer), a .gguf file, or a hub id (`org/name`) fetched first')
            [CompletionResult]::new('--dataset', '--dataset', [CompletionResultType]::ParameterName, 'Training data: a file (jsonl, json, csv, parquet) or folder, `PATH#N` to sample N rows (repeatable, mixed)')
            [CompletionResult]::new('--val-dataset', '--val-dataset', [CompletionResultType]::ParameterName, 'Validation data (otherwise --split-dataset-ratio of the training rows)')
            [CompletionResult]::new('--split-dataset-ratio', '--split-dataset-ratio', [CompletionResultType]::ParameterName, 'Fraction of the training rows held out for validation when no --val-dataset is given')
            [CompletionResult]::new('--columns', '--columns', [CompletionResultType]::ParameterName, 'JSON object mapping source column names to standard ones, e.g. ''{"question": "query", "answer": "response"}''')
            [CompletionResult]::new('--max-length', '--max-length', [CompletionResultType]::ParameterName, 'Longest sample in tokens')
            [CompletionResult]::new('--truncation-strategy', '--truncation-strategy', [CompletionResultType]::ParameterName, 'What to do with samples over --max-length')
            [CompletionResult]::new('--system', '--system', [CompletionResultType]::ParameterName, 'A default system prompt for rows that have none')
            [CompletionResult]::new('--output-dir', '--output-dir', [CompletionResultType]::ParameterName, 'Where the adapter / weights, checkpoints and logs go')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'Training method; `auto` asks the planner (its choice and reason are printed and kept in args.json)')
            [CompletionResult]::new('--tuner', '--tuner', [CompletionResultType]::ParameterName, 'What trains: LoRA adapters, or every weight (`full`)')
            [CompletionResult]::new('--lora-rank', '--lora-rank', [CompletionResultType]::ParameterName, 'LoRA rank')
            [CompletionResult]::new('--lora-alpha', '--lora-alpha', [CompletionResultType]::ParameterName, 'LoRA alpha (scale = alpha / rank, or alpha / sqrt(rank) with rsLoRA)')
            [CompletionResult]::new('--lora-dropout', '--lora-dropout', [CompletionResultType]::ParameterName, 'Dropout on the LoRA input')
            [CompletionResult]::new('--target-modules', '--target-modules', [CompletionResultType]::ParameterName, 'Modules LoRA wraps: all-linear, or names (q_proj,k_proj,...)')
            [CompletionResult]::new('--learning-rate', '--learning-rate', [CompletionResultType]::ParameterName, 'Peak learning rate (default 1e-4 for LoRA, 1e-5 for full tuning)')
            [CompletionResult]::new('--adam-beta1', '--adam-beta1', [CompletionResultType]::ParameterName, 'AdamW beta1')
            [CompletionResult]::new('--adam-beta2', '--adam-beta2', [CompletionResultType]::ParameterName, 'AdamW beta2')
            [CompletionResult]::new('--adam-epsilon', '--adam-epsilon', [CompletionResultType]::ParameterName, 'AdamW epsilon')
            [CompletionResult]::new('--weight-decay', '--weight-decay', [CompletionResultType]::ParameterName, 'AdamW decoupled weight decay (not on biases and norms)')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Sequences per forward pass (default: the planner''s choice)')
            [CompletionResult]::new('--gradient-accumulation-steps', '--gradient-accumulation-steps', [CompletionResultType]::ParameterName, 'Forward passes per optimizer step (default: the planner''s choice)')
            [CompletionResult]::new('--lr-scheduler-type', '--lr-scheduler-type', [CompletionResultType]::ParameterName, 'Learning-rate schedule after the warm-up')
            [CompletionResult]::new('--warmup-ratio', '--warmup-ratio', [CompletionResultType]::ParameterName, 'Warm-up as a fraction of the steps')
            [CompletionResult]::new('--warmup-steps', '--warmup-steps', [CompletionResultType]::ParameterName, 'Warm-up steps (overrides --warmup-ratio)')
            [CompletionResult]::new('--max-grad-norm', '--max-grad-norm', [CompletionResultType]::ParameterName, 'Clip the gradient norm to this (0 = off)')
            [CompletionResult]::new('--num-train-epochs', '--num-train-epochs', [CompletionResultType]::ParameterName, 'Passes over the training data')
            [CompletionResult]::new('--max-steps', '--max-steps', [CompletionResultType]::ParameterName, 'Optimizer steps (overrides --num-train-epochs)')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed of the LoRA init, the data order and dropout')
            [CompletionResult]::new('--logging-steps', '--logging-steps', [CompletionResultType]::ParameterName, 'Log (logging.jsonl, TensorBoard) every N steps')
            [CompletionResult]::new('--eval-steps', '--eval-steps', [CompletionResultType]::ParameterName, 'Evaluate every N steps (and at the end) when there is validation data')
            [CompletionResult]::new('--save-steps', '--save-steps', [CompletionResultType]::ParameterName, 'Write checkpoint-N/ every N steps (and at the end)')
            [CompletionResult]::new('--save-total-limit', '--save-total-limit', [CompletionResultType]::ParameterName, 'Keep only the newest N checkpoints')
            [CompletionResult]::new('--resume-from-checkpoint', '--resume-from-checkpoint', [CompletionResultType]::ParameterName, 'Continue a run: a checkpoint folder, or `latest` in --output-dir')
            [CompletionResult]::new('--quant-bits', '--quant-bits', [CompletionResultType]::ParameterName, 'QLoRA on a full-precision model: quantize the frozen base''s decoder linears at load, 4 = NF4 (bitsandbytes'' 4-bit NormalFloat, blocks of 64), 8 = 8-bit blocks. Implies --method qlora; `auto` picks 4 when the planner chooses QLoRA. A GGUF trains on its own quantized weights')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'CPU threads (default: all cores)')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'CPU threads (default: all cores)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--packing', '--packing', [CompletionResultType]::ParameterName, 'Pack short samples into rows of --max-length tokens')
            [CompletionResult]::new('--loss-on-all-tokens', '--loss-on-all-tokens', [CompletionResultType]::ParameterName, 'Train on every token (pre-training style), not only assistant turns')
            [CompletionResult]::new('--dedup', '--dedup', [CompletionResultType]::ParameterName, 'Remove exact duplicate rows')
            [CompletionResult]::new('--skip-bad-rows', '--skip-bad-rows', [CompletionResultType]::ParameterName, 'Skip and count malformed rows instead of stopping')
            [CompletionResult]::new('--use-rslora', '--use-rslora', [CompletionResultType]::ParameterName, 'Rank-stabilised LoRA (scale alpha / sqrt(rank))')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a JSON summary on stdout at the end')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;dpo' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'A model folder, a .gguf file, or a hub id (`org/name`) fetched first')
            [CompletionResult]::new('--dataset', '--dataset', [CompletionResultType]::ParameterName, 'Preference data: a file (jsonl, json, csv, parquet) or folder, `PATH#N` to sample N rows (repeatable)')
            [CompletionResult]::new('--val-dataset', '--val-dataset', [CompletionResultType]::ParameterName, 'Validation data (otherwise --split-dataset-ratio of the training rows)')
            [CompletionResult]::new('--split-dataset-ratio', '--split-dataset-ratio', [CompletionResultType]::ParameterName, 'Fraction of the training rows held out for validation')
            [CompletionResult]::new('--columns', '--columns', [CompletionResultType]::ParameterName, 'JSON object mapping source column names to standard ones')
            [CompletionResult]::new('--max-length', '--max-length', [CompletionResultType]::ParameterName, 'Longest prompt + answer in tokens')
            [CompletionResult]::new('--truncation-strategy', '--truncation-strategy', [CompletionResultType]::ParameterName, 'What to do with rows over --max-length')
            [CompletionResult]::new('--system', '--system', [CompletionResultType]::ParameterName, 'A default system prompt for rows that have none')
            [CompletionResult]::new('--loss', '--loss', [CompletionResultType]::ParameterName, 'The preference loss')
            [CompletionResult]::new('--beta', '--beta', [CompletionResultType]::ParameterName, 'Strength of the KL penalty (DPO/IPO/KTO), ORPO''s lambda, SimPO''s beta (default 0.1; 2.0 for SimPO)')
            [CompletionResult]::new('--label-smoothing', '--label-smoothing', [CompletionResultType]::ParameterName, 'Conservative DPO / SimPO: probability the preference label is flipped')
            [CompletionResult]::new('--simpo-gamma', '--simpo-gamma', [CompletionResultType]::ParameterName, 'SimPO''s target reward margin')
            [CompletionResult]::new('--desirable-weight', '--desirable-weight', [CompletionResultType]::ParameterName, 'KTO: weight of desirable examples')
            [CompletionResult]::new('--undesirable-weight', '--undesirable-weight', [CompletionResultType]::ParameterName, 'KTO: weight of undesirable examples')
            [CompletionResult]::new('--adapter', '--adapter', [CompletionResultType]::ParameterName, 'Start the policy from this LoRA adapter (e.g. an SFT result); it keeps training')
            [CompletionResult]::new('--ref-adapter', '--ref-adapter', [CompletionResultType]::ParameterName, 'The reference model is the base with this adapter (default: the base alone)')
            [CompletionResult]::new('--output-dir', '--output-dir', [CompletionResultType]::ParameterName, 'Where the adapter / weights, checkpoints and logs go')
            [CompletionResult]::new('--tuner', '--tuner', [CompletionResultType]::ParameterName, 'What trains: LoRA adapters, or every weight (`full`)')
            [CompletionResult]::new('--lora-rank', '--lora-rank', [CompletionResultType]::ParameterName, 'LoRA rank')
            [CompletionResult]::new('--lora-alpha', '--lora-alpha', [CompletionResultType]::ParameterName, 'LoRA alpha')
            [CompletionResult]::new('--lora-dropout', '--lora-dropout', [CompletionResultType]::ParameterName, 'Dropout on the LoRA input')
            [CompletionResult]::new('--target-modules', '--target-modules', [CompletionResultType]::ParameterName, 'Modules LoRA wraps: all-linear, or names (q_proj,k_proj,...)')
            [CompletionResult]::new('--learning-rate', '--learning-rate', [CompletionResultType]::ParameterName, 'Peak learning rate (default 5e-5 for LoRA, 5e-7 for full tuning)')
            [CompletionResult]::new('--weight-decay', '--weight-decay', [CompletionResultType]::ParameterName, 'AdamW decoupled weight decay')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Pairs per forward pass (each pair is two sequences; default: the planner''s choice)')
            [CompletionResult]::new('--gradient-accumulation-steps', '--gradient-accumulation-steps', [CompletionResultType]::ParameterName, 'Forward passes per optimizer step')
            [CompletionResult]::new('--lr-scheduler-type', '--lr-scheduler-type', [CompletionResultType]::ParameterName, 'Learning-rate schedule after the warm-up')
            [CompletionResult]::new('--warmup-ratio', '--warmup-ratio', [CompletionResultType]::ParameterName, 'Warm-up as a fraction of the steps')
            [CompletionResult]::new('--warmup-steps', '--warmup-steps', [CompletionResultType]::ParameterName, 'Warm-up steps (overrides --warmup-ratio)')
            [CompletionResult]::new('--max-grad-norm', '--max-grad-norm', [CompletionResultType]::ParameterName, 'Clip the gradient norm to this (0 = off)')
            [CompletionResult]::new('--num-train-epochs', '--num-train-epochs', [CompletionResultType]::ParameterName, 'Passes over the training data')
            [CompletionResult]::new('--max-steps', '--max-steps', [CompletionResultType]::ParameterName, 'Optimizer steps (overrides --num-train-epochs)')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed of the LoRA init, the data order and dropout')
            [CompletionResult]::new('--logging-steps', '--logging-steps', [CompletionResultType]::ParameterName, 'Log (logging.jsonl, TensorBoard) every N steps')
            [CompletionResult]::new('--eval-steps', '--eval-steps', [CompletionResultType]::ParameterName, 'Evaluate every N steps (and at the end) when there is validation data')
            [CompletionResult]::new('--save-steps', '--save-steps', [CompletionResultType]::ParameterName, 'Write checkpoint-N/ every N steps (and at the end)')
            [CompletionResult]::new('--save-total-limit', '--save-total-limit', [CompletionResultType]::ParameterName, 'Keep only the newest N checkpoints')
            [CompletionResult]::new('--resume-from-checkpoint', '--resume-from-checkpoint', [CompletionResultType]::ParameterName, 'Continue a run: a checkpoint folder, or `latest` in --output-dir')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'CPU threads (default: all cores)')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'CPU threads (default: all cores)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--dedup', '--dedup', [CompletionResultType]::ParameterName, 'Remove exact duplicate rows')
            [CompletionResult]::new('--skip-bad-rows', '--skip-bad-rows', [CompletionResultType]::ParameterName, 'Skip and count malformed rows instead of stopping')
            [CompletionResult]::new('--precompute-ref-logps', '--precompute-ref-logps', [CompletionResultType]::ParameterName, 'Compute the reference log-probs once before training (no reference model kept during training; useful with --tuner full)')
            [CompletionResult]::new('--use-rslora', '--use-rslora', [CompletionResultType]::ParameterName, 'Rank-stabilised LoRA')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a JSON summary on stdout at the end')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;merge' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'The base model: a Hugging Face folder, a .gguf file, or a hub id')
            [CompletionResult]::new('--adapter', '--adapter', [CompletionResultType]::ParameterName, 'A peft LoRA adapter folder to fold in (repeat to stack several, applied in order)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Where to write: a folder (hf) or a file (gguf)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Where to write: a folder (hf) or a file (gguf)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--dtype', '--dtype', [CompletionResultType]::ParameterName, 'Weight type of a Hugging Face output [default: the base''s; f32 for a GGUF base]')
            [CompletionResult]::new('--quant', '--quant', [CompletionResultType]::ParameterName, 'Weight type of the matrices in a GGUF output (norms stay f32)')
            [CompletionResult]::new('--max-shard-size', '--max-shard-size', [CompletionResultType]::ParameterName, 'Largest safetensors shard of a Hugging Face output')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace the output if it exists')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as JSON on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;export' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'The base model: a Hugging Face folder, a .gguf file, or a hub id')
            [CompletionResult]::new('--adapter', '--adapter', [CompletionResultType]::ParameterName, 'A peft LoRA adapter folder to fold in (repeat to stack several, applied in order)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Where to write: a folder (hf) or a file (gguf)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Where to write: a folder (hf) or a file (gguf)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--dtype', '--dtype', [CompletionResultType]::ParameterName, 'Weight type of a Hugging Face output [default: the base''s; f32 for a GGUF base]')
            [CompletionResult]::new('--quant', '--quant', [CompletionResultType]::ParameterName, 'Weight type of the matrices in a GGUF output (norms stay f32)')
            [CompletionResult]::new('--max-shard-size', '--max-shard-size', [CompletionResultType]::ParameterName, 'Largest safetensors shard of a Hugging Face output')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace the output if it exists')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the result as JSON on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;eval' {
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'A model folder, a .gguf file, or a hub id (`org/name`, `hf::`, `ms::`)')
            [CompletionResult]::new('--adapter', '--adapter', [CompletionResultType]::ParameterName, 'A PEFT LoRA adapter folder applied to --model (repeatable)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Evaluate an OpenAI-compatible server instead (http://host:port/v1), through /v1/completions with echo + logprobs')
            [CompletionResult]::new('--served-model', '--served-model', [CompletionResultType]::ParameterName, 'The model name to send to the server (default: the first of /v1/models)')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'Bearer key for the server')
            [CompletionResult]::new('--tokenizer', '--tokenizer', [CompletionResultType]::ParameterName, 'Tokenize here with this tokenizer (a model folder or .gguf) and send token ids; without it prompts go as text')
            [CompletionResult]::new('--task', '--task', [CompletionResultType]::ParameterName, 'perplexity, multiple-choice or exact-match (repeatable, one per --dataset)')
            [CompletionResult]::new('--dataset', '--dataset', [CompletionResultType]::ParameterName, 'The task''s data file (repeatable)')
            [CompletionResult]::new('--tasks-file', '--tasks-file', [CompletionResultType]::ParameterName, 'A JSON file listing tasks: [{"task": "multiple-choice", "dataset": "mmlu.jsonl", "name": "mmlu"}] (paths relative to the file)')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Evaluate the first N documents of each task only')
            [CompletionResult]::new('--num-fewshot', '--num-fewshot', [CompletionResultType]::ParameterName, 'Few-shot examples before each question')
            [CompletionResult]::new('--fewshot-dataset', '--fewshot-dataset', [CompletionResultType]::ParameterName, 'Take few-shot examples from this file (a dev split: its first K), not from the evaluated file (K others drawn with --seed)')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed of the few-shot draw')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Documents scored together in one batch')
            [CompletionResult]::new('--max-length', '--max-length', [CompletionResultType]::ParameterName, 'Perplexity: most tokens in one window (default: the model''s context)')
            [CompletionResult]::new('--stride', '--stride', [CompletionResultType]::ParameterName, 'Perplexity: tokens scored per window (default: --max-length); smaller gives each token more context')
            [CompletionResult]::new('--max-new-tokens', '--max-new-tokens', [CompletionResultType]::ParameterName, 'Exact match: most tokens generated per answer')
            [CompletionResult]::new('--answer-regex', '--answer-regex', [CompletionResultType]::ParameterName, 'Exact match: the answer is this regex''s first match (its first group); default: the last number in the text')
            [CompletionResult]::new('--stop', '--stop', [CompletionResultType]::ParameterName, 'Exact match: stop generating at this string (repeatable; added to "Question:", "</s>", "<|im_end|>")')
            [CompletionResult]::new('--output-dir', '--output-dir', [CompletionResultType]::ParameterName, 'Write results.json and one samples_<task>.jsonl per task here')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'CPU threads for the model (default: all cores)')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'CPU threads for the model (default: all cores)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the results as one JSON object')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;completions' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours (NO_COLOR is respected under `auto`)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more (repeat for more detail)')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Do not draw progress bars')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'swift;help' {
            [CompletionResult]::new('download', 'download', [CompletionResultType]::ParameterValue, 'Fetch a model or dataset from the Hugging Face Hub or ModelScope')
            [CompletionResult]::new('estimate-vram', 'estimate-vram', [CompletionResultType]::ParameterValue, 'Predict the peak memory of a job and decide whether it fits')
            [CompletionResult]::new('infer', 'infer', [CompletionResultType]::ParameterValue, 'Generate from the terminal, or serve an OpenAI-compatible API')
            [CompletionResult]::new('finetune', 'finetune', [CompletionResultType]::ParameterValue, 'Supervised fine-tuning: LoRA, QLoRA on a GGUF, or full')
            [CompletionResult]::new('dpo', 'dpo', [CompletionResultType]::ParameterValue, 'Preference alignment: DPO, IPO, ORPO, SimPO, KTO (LoRA or full)')
            [CompletionResult]::new('merge', 'merge', [CompletionResultType]::ParameterValue, 'Fold LoRA adapters into a base model, or convert between HF and GGUF')
            [CompletionResult]::new('eval', 'eval', [CompletionResultType]::ParameterValue, 'Measure a model: perplexity, multiple-choice accuracy, exact match')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'swift;help;download' {
            break
        }
        'swift;help;estimate-vram' {
            break
        }
        'swift;help;infer' {
            break
        }
        'swift;help;finetune' {
            break
        }
        'swift;help;dpo' {
            break
        }
        'swift;help;merge' {
            break
        }
        'swift;help;eval' {
            break
        }
        'swift;help;completions' {
            break
        }
        'swift;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
