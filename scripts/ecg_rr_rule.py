#!/usr/bin/python3
"""How much prematurity alone says about S beats (docs/ecg.md): on the reference
annotations of a WFDB folder (MIT format, read here directly), call a beat S when
its previous RR over the mean of the last 10 RRs is below a threshold, and print
sensitivity and +P for S against N, then each record's S beats' median ratio.
No network, no detector. Usage: /usr/bin/python3 scripts/ecg_rr_rule.py [DIR]"""
import glob, os, sys
import numpy as np
D = sys.argv[1] if len(sys.argv) > 1 else '../shared/data/mitdb-ds1'
AAMI={}
for c in 'NLRej': AAMI[c]='N'
for c in 'AaJS': AAMI[c]='S'
for c in 'VE': AAMI[c]='V'
AAMI['F']='F'
for c in '/fQ': AAMI[c]='Q'
CODES={1:'N',2:'L',3:'R',4:'a',5:'V',6:'F',7:'J',8:'A',9:'S',10:'E',11:'j',12:'/',13:'Q',34:'e',38:'f'}
def read_atr(p):
    b=np.fromfile(p,dtype='<u2'); t=0; out=[]; i=0
    while i<len(b):
        w=int(b[i]); code=w>>10; iv=w&1023; i+=1
        if code==0 and iv==0: break
        if code==59: t+= (int(b[i])<<16)|int(b[i+1]); i+=2; continue
        if code in (60,61,62): continue
        if code==63:
            i+= (iv+1)//2; continue
        t+=iv
        if code in CODES: out.append((t,CODES[code]))
    return out
rows=[]
for h in sorted(glob.glob(D+'/*.hea')):
    r=os.path.basename(h)[:-4]
    a=read_atr(D+'/'+r+'.atr')
    ts=np.array([x[0] for x in a],float)/360; cl=[AAMI[x[1]] for x in a]
    rr=np.diff(ts)
    for k in range(1,len(ts)-1):
        prev=rr[k-1]; nxt=rr[k]; loc=np.mean(rr[max(0,k-10):k]); 
        var=np.std(rr[max(0,k-10):k])/loc
        rows.append((r,cl[k],prev/loc,nxt/prev,var))
import collections
cl=np.array([x[1] for x in rows]); p=np.array([x[2] for x in rows]); q=np.array([x[3] for x in rows]); v=np.array([x[4] for x in rows]); rec=np.array([x[0] for x in rows])
m=(cl=='N')|(cl=='S')
print('N',sum(cl=='N'),'S',sum(cl=='S'))
for t in [0.7,0.75,0.8,0.85,0.9]:
  for vt in [1.0,0.15,0.1]:
    pred=(p<t)&(v<vt)
    tp=sum(pred&(cl=='S')); fp=sum(pred&(cl=='N')); 
    print(f"p<{t} var<{vt}: Se {tp/sum(cl=='S'):.3f} +P {tp/max(1,tp+fp):.3f} fp {fp}")
for r in sorted(set(rec)):
    s=(rec==r)&(cl=='S')
    if s.sum()>0: print(r, s.sum(), 'median prev/loc', np.median(p[s]).round(2), 'frac<0.85', np.mean(p[s]<0.85).round(2))
