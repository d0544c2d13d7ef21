_swift() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="swift"
                ;;
            swift,completions)
                cmd="swift__subcmd__completions"
                ;;
            swift,download)
                cmd="swift__subcmd__download"
                ;;
            swift,dpo)
                cmd="swift__subcmd__dpo"
                ;;
            swift,estimate)
                cmd="swift__subcmd__estimate__subcmd__vram"
                ;;
            swift,estimate-vram)
                cmd="swift__subcmd__estimate__subcmd__vram"
                ;;
            swift,eval)
                cmd="swift__subcmd__eval"
                ;;
            swift,export)
                cmd="swift__subcmd__merge"
                ;;
            swift,finetune)
                cmd="swift__subcmd__finetune"
                ;;
            swift,help)
                cmd="swift__subcmd__help"
                ;;
            swift,infer)
                cmd="swift__subcmd__infer"
                ;;
            swift,merge)
                cmd="swift__subcmd__merge"
                ;;
            swift__subcmd__help,completions)
                cmd="swift__subcmd__help__subcmd__completions"
                ;;
            swift__subcmd__help,download)
                cmd="swift__subcmd__help__subcmd__download"
                ;;
            swift__subcmd__help,dpo)
                cmd="swift__subcmd__help__subcmd__dpo"
                ;;
            swift__subcmd__help,estimate-vram)
                cmd="swift__subcmd__help__subcmd__estimate__subcmd__vram"
                ;;
            swift__subcmd__help,eval)
                cmd="swift__subcmd__help__subcmd__eval"
                ;;
            swift__subcmd__help,finetune)
                cmd="swift__subcmd__help__subcmd__finetune"
                ;;
            swift__subcmd__help,help)
                cmd="swift__subcmd__help__subcmd__help"
                ;;
            swift__subcmd__help,infer)
                cmd="swift__subcmd__help__subcmd__infer"
                ;;
            swift__subcmd__help,merge)
                cmd="swift__subcmd__help__subcmd__merge"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        swift)
            opts="-q -v -h -V --quiet --verbose --color --no-progress --help --version download estimate-vram estimate infer finetune dpo merge export eval completions help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --color)
                    COMPREPLY=($(compgen -W "auto always never" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__completions)
            opts="-q -v -h -V --quiet --verbose --color --no-progress --help --version bash zsh fish elvish powershell"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --color)
                    COMPREPLY=($(compgen -W "auto always never" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__download)
            opts="-q -v -h -V --model --dataset --hub --repo-type --revision --include --exclude --local-dir --cache-dir --token --endpoint --offline --force --max-workers --connections --part-size-mb --json --list-datasets --registry --quiet --verbose --color --no-progress --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --model)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --dataset)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hub)
                    COMPREPLY=($(compgen -W "hf modelscope" -- "${cur}"))
                    return 0
                    ;;
                --repo-type)
                    COMPREPLY=($(compgen -W "model dataset" -- "${cur}"))
                    return 0
                    ;;
                --revision)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --include)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --exclude)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --local-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cache-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --token)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --endpoint)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-workers)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --connections)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --part-size-mb)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --registry)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --color)
                    COMPREPLY=($(compgen -W "auto always never" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__dpo)
            opts="-t -q -v -h -V --model --val-dataset --split-dataset-ratio --columns --max-length --truncation-strategy --dedup --skip-bad-rows --system --loss --beta --label-smoothing --simpo-gamma --desirable-weight --undesirable-weight --adapter --ref-adapter --precompute-ref-logps --tuner --lora-rank --lora-alpha --lora-dropout --target-modules --use-rslora --adam-beta1 --adam-beta2 --adam-epsilon --gradient-accumulation-steps --lr-scheduler-type --warmup-ratio --warmup-steps --max-grad-norm --max-steps --seed --logging-steps --eval-steps --save-steps --save-total-limit --resume-from-checkpoint --output-dir --threads --json --dataset --learning-rate --weight-decay --batch-size --num-train-epochs --quiet --verbose --color --no-progress --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --model)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --val-dataset)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --split-dataset-ratio)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --columns)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-length)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --truncation-strategy)
                    COMPREPLY=($(compgen -W "delete left right" -- "${cur}"))
                    return 0
                    ;;
                --system)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --loss)
                    COMPREPLY=($(compgen -W "dpo ipo orpo simpo kto" -- "${cur}"))
                    return 0
                    ;;
                --beta)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --label-smoothing)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --simpo-gamma)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --desirable-weight)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --undesirable-weight)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --adapter)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ref-adapter)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tuner)
                    COMPREPLY=($(compgen -W "lora full" -- "${cur}"))
                    return 0
                    ;;
                --lora-rank)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --lora-alpha)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --lora-dropout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --target-modules)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --adam-beta1)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --adam-beta2)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --adam-epsilon)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --gradient-accumulation-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --lr-scheduler-type)
                    COMPREPLY=($(compgen -W "cosine linear constant" -- "${cur}"))
                    return 0
                    ;;
                --warmup-ratio)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --warmup-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-grad-norm)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --seed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --logging-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --eval-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --save-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --save-total-limit)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --resume-from-checkpoint)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --output-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --threads)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -t)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --dataset)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --learning-rate)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --weight-decay)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --batch-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --num-train-epochs)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --color)
                    COMPREPLY=($(compgen -W "auto always never" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__estimate__subcmd__vram)
            opts="-q -v -h -V --model --method --dtype --quant-bits --batch-size --max-length --seq-len --max-new-tokens --lora-rank --target-modules --gradient-checkpointing --optimizer --attention --lora-dropout --loss-impl --device --engine --gpus --zero --effective-batch --budget --json --quiet --verbose --color --no-progress --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --model)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --method)
                    COMPREPLY=($(compgen -W "auto infer lora qlora full dpo-lora dpo-full" -- "${cur}"))
                    return 0
                    ;;
                --dtype)
                    COMPREPLY=($(compgen -W "auto bf16 f16 f32" -- "${cur}"))
                    return 0
                    ;;
                --quant-bits)
                    COMPREPLY=($(compgen -W "4 8" -- "${cur}"))
                    return 0
                    ;;
                --batch-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --seq-len)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-length)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-new-tokens)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --lora-rank)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --target-modules)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --gradient-checkpointing)
                    COMPREPLY=($(compgen -W "true false" -- "${cur}"))
                    return 0
                    ;;
                --optimizer)
                    COMPREPLY=($(compgen -W "adamw adamw-8bit sgd" -- "${cur}"))
                    return 0
                    ;;
                --attention)
                    COMPREPLY=($(compgen -W "fused flash eager" -- "${cur}"))
                    return 0
                    ;;
                --lora-dropout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --loss-impl)
                    COMPREPLY=($(compgen -W "chunked full" -- "${cur}"))
                    return 0
                    ;;
                --device)
                    COMPREPLY=($(compgen -W "auto cpu cuda metal" -- "${cur}"))
                    return 0
                    ;;
                --engine)
                    COMPREPLY=($(compgen -W "swift torch" -- "${cur}"))
                    return 0
                    ;;
                --gpus)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --zero)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --effective-batch)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --budget)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --color)
                    COMPREPLY=($(compgen -W "auto always never" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__eval)
            opts="-t -q -v -h -V --model --adapter --url --served-model --api-key --tokenizer --task --dataset --tasks-file --limit --num-fewshot --fewshot-dataset --seed --batch-size --max-length --stride --max-new-tokens --answer-regex --stop --json --output-dir --threads --quiet --verbose --color --no-progress --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --model)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --adapter)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --url)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --served-model)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --api-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tokenizer)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --task)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --dataset)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tasks-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --limit)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --num-fewshot)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --fewshot-dataset)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --seed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --batch-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-length)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stride)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-new-tokens)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --answer-regex)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stop)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --output-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --threads)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -t)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --color)
                    COMPREPLY=($(compgen -W "auto always never" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__finetune)
            opts="-t -q -v -h -V --model --dataset --val-dataset --split-dataset-ratio --columns --max-length --truncation-strategy --dedup --skip-bad-rows --system --packing --loss-on-all-tokens --method --tuner --quant-bits --lora-rank --lora-alpha --lora-dropout --target-modules --use-rslora --learning-rate --adam-beta1 --adam-beta2 --adam-epsilon --weight-decay --batch-size --gradient-accumulation-steps --lr-scheduler-type --warmup-ratio --warmup-steps --max-grad-norm --num-train-epochs --max-steps --seed --logging-steps --eval-steps --save-steps --save-total-limit --resume-from-checkpoint --output-dir --threads --json --merge --merge-output --merge-format --serve --host --port --api-key --served-model-name --quiet --verbose --color --no-progress --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --model)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --dataset)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --val-dataset)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --split-dataset-ratio)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --columns)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-length)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --truncation-strategy)
                    COMPREPLY=($(compgen -W "delete left right" -- "${cur}"))
                    return 0
                    ;;
                --system)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --method)
                    COMPREPLY=($(compgen -W "auto lora qlora full" -- "${cur}"))
                    return 0
                    ;;
                --tuner)
                    COMPREPLY=($(compgen -W "lora full" -- "${cur}"))
                    return 0
                    ;;
                --quant-bits)
                    COMPREPLY=($(compgen -W "4 8" -- "${cur}"))
                    return 0
                    ;;
                --lora-rank)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --lora-alpha)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --lora-dropout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --target-modules)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --learning-rate)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --adam-beta1)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --adam-beta2)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --adam-epsilon)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --weight-decay)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --batch-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --gradient-accumulation-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --lr-scheduler-type)
                    COMPREPLY=($(compgen -W "cosine linear constant" -- "${cur}"))
                    return 0
                    ;;
                --warmup-ratio)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --warmup-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-grad-norm)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --num-train-epochs)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --seed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --logging-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --eval-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --save-steps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --save-total-limit)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --resume-from-checkpoint)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --output-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --threads)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -t)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --merge-output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --merge-format)
                    COMPREPLY=($(compgen -W "hf gguf" -- "${cur}"))
                    return 0
                    ;;
                --host)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --api-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --served-model-name)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --color)
                    COMPREPLY=($(compgen -W "auto always never" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__help)
            opts="download estimate-vram infer finetune dpo merge eval completions help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__help__subcmd__completions)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__help__subcmd__download)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__help__subcmd__dpo)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__help__subcmd__estimate__subcmd__vram)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__help__subcmd__eval)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__help__subcmd__finetune)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__help__subcmd__infer)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__help__subcmd__merge)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__infer)
            opts="-p -t -q -v -h -V --model --adapter --prompt --system --raw --template --max-new-tokens --temperature --top-k --top-p --min-p --repetition-penalty --seed --stop --ignore-eos --threads --json --serve --host --port --api-key --served-model-name --max-batch --queue-size --max-body-bytes --shutdown-grace --quiet --verbose --color --no-progress --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --model)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --adapter)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --prompt)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -p)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --system)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --template)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-new-tokens)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --temperature)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --top-k)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --top-p)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --min-p)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --repetition-penalty)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --seed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stop)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --threads)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -t)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --host)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --api-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --served-model-name)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-batch)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --queue-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-body-bytes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --shutdown-grace)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --color)
                    COMPREPLY=($(compgen -W "auto always never" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        swift__subcmd__merge)
            opts="-o -q -v -h -V --model --adapter --output --format --dtype --quant --keep-types --max-shard-size --force --json --quiet --verbose --color --no-progress --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --model)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --adapter)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -o)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --format)
                    COMPREPLY=($(compgen -W "hf gguf" -- "${cur}"))
                    return 0
                    ;;
                --dtype)
                    COMPREPLY=($(compgen -W "f32 f16 bf16" -- "${cur}"))
                    return 0
                    ;;
                --quant)
                    COMPREPLY=($(compgen -W "q4_0 q4_1 q8_0 f16 f32" -- "${cur}"))
                    return 0
                    ;;
                --max-shard-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --color)
                    COMPREPLY=($(compgen -W "auto always never" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _swift -o nosort -o bashdefault -o default swift
else
    complete -F _swift -o bashdefault -o default swift
fi
