cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
H=add=5,sort=2,reverse=2,count=6,balanced=6,lookup=6,hex2bin=2,caesar=3
HL=add=5,sort=2,reverse=2,count=6,balanced=6,lookup=12,hex2bin=2,caesar=5
T3=add=3,sort=3,reverse=3,count=3,balanced=3,lookup=3,hex2bin=3,caesar=3
R() { n=$1; shift; timeout 555 python3 scripts/recipe-sweep/sweep.py --name $n --corpus tmp/sweep/corpus.json.gz --out $OUT/$n.json --eval_at 2000,4000,5000,6000 --docmask 1 "$@" > $OUT/$n.log 2>&1 & }
R fin-h-lr1 --steps 6000 --mix $H --lr 1e-3 --min_lr 1e-4
R fin-h-lr1-s1 --steps 6000 --mix $H --lr 1e-3 --min_lr 1e-4 --seed 1
R fin-h-lr1-s2 --steps 6000 --mix $H --lr 1e-3 --min_lr 1e-4 --seed 2
R fin-h-lr15 --steps 6000 --mix $H --lr 1.5e-3 --min_lr 1.5e-4
R fin-h-lr1-5k --steps 5000 --mix $H --lr 1e-3 --min_lr 1e-4
R fin-hL-lr1 fin --steps 6000 --mix $HL --lr 1e-3 --min_lr 1e-4
R fin-t3-lr1 --steps 6000 --mix $T3 --lr 1e-3 --min_lr 1e-4
R fin-h-lr1-8k --steps 8000 --mix $H --lr 1e-3 --min_lr 1e-4
wait
grep -h "text" $OUT/*.log | grep -v Warn | sed 's/ loss.*t \([0-9]*\)s/ t\1/'; tail -n 2 $OUT/*.log | grep -i error
rm -f $OUT/*.log
