cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
T3=add=3,sort=3,reverse=3,count=3,balanced=3,lookup=3,hex2bin=3,caesar=3
MA=add=5,sort=2,reverse=2,count=6,balanced=6,lookup=6,hex2bin=2,caesar=3
R() { n=$1; shift; timeout 420 python3 scripts/recipe-sweep/sweep.py --name $n --out /tmp/$n.json "$@" > /tmp/$n.log 2>&1 & }
R mA-lr1 --steps 4000 --mix $MA --lr 1e-3 --min_lr 1e-4
R mA-lr2 --steps 4000 --mix $MA --lr 2e-3 --min_lr 2e-4
R mA-lr3 --steps 4000 --mix $MA
R mA-lr1-6k --steps 6000 --mix $MA --lr 1e-3 --min_lr 1e-4 --eval_at 4000
R t3-lr1 --steps 4000 --mix $T3 --lr 1e-3 --min_lr 1e-4
R mA-lr2-r24 --steps 4000 --mix $MA --lr 2e-3 --min_lr 2e-4 --rows 24
R mA-lr2-6k --steps 6000 --mix $MA --lr 2e-3 --min_lr 2e-4 --eval_at 4000
R mA-lr2-noaux --steps 4000 --mix $MA --lr 2e-3 --min_lr 2e-4 --aux 0
wait
grep -h "text" /tmp/*.log | grep -v Warn; tail -n 2 /tmp/*.log | grep -i error
