cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
python3 scripts/check_extracted_with_transformers.py tmp/demo-sub > $OUT/demo-sub-check.txt 2>&1 &
R() { n=$1; shift; timeout 530 python3 scripts/recipe-sweep/sweep.py --name $n --out $OUT/$n.json "$@" > $OUT/$n.log 2>&1 & }
R base --steps 2000 --eval_at 1000
R s4000 --steps 4000 --eval_at 2000
R s8000 --steps 8000 --eval_at 2000,4000,6000
R s16000 --steps 16000 --eval_at 4000,8000,12000
R lr1e-3 --steps 4000 --lr 1e-3 --min_lr 1e-4 --eval_at 2000
R h256 --steps 4000 --hidden 256 --ffn 256 --eval_at 2000
R textx3 --steps 4000 --mix add=3,sort=3,reverse=3,count=3,balanced=3,lookup=3,hex2bin=3,caesar=3 --eval_at 2000
R rows32 --steps 4000 --rows 32 --eval_at 2000
wait
cat $OUT/demo-sub-check.txt; grep -h "text" $OUT/*.log | grep -v Warn; tail -n 2 $OUT/*.log | grep -i error
