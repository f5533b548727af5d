import torch, torchvision, json, struct, numpy as np
def load_st(p):
    b=open(p,'rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n]); d=8+n; out={}
    for k,v in h.items():
        if k=='__metadata__': continue
        s,e=v['data_offsets']; dt={'F32':np.float32,'I64':np.int64,'F64':np.float64}[v['dtype']]
        out[k]=torch.from_numpy(np.frombuffer(b[d+s:d+e],dtype=dt).reshape(v['shape']).copy())
    return out
w=load_st('weights.safetensors'); b=load_st('batch.safetensors')
def run(dtype):
    m=torchvision.models.resnet18(num_classes=10); m.conv1=torch.nn.Conv2d(3,64,3,1,1,bias=False); m.maxpool=torch.nn.Identity()
    m.load_state_dict(w); m=m.to(dtype); m.train()
    loss=torch.nn.functional.cross_entropy(m(b['x'].to(dtype)), b['y']); loss.backward()
    return float(loss), {k:p.grad.double() for k,p in m.named_parameters()}
torch.set_num_threads(2)
l64,g64=run(torch.float64); l32,g32=run(torch.float32)
print('loss64',l64,'loss32',l32)
cl={k:v.double() for k,v in load_st('grads_auto.safetensors').items()}
ci={k:v.double() for k,v in load_st('grads_im2col.safetensors').items()}
def rel(a,ref): return float((a-ref).abs().max()/ref.abs().max())
worst={'torch32':0,'auto':0,'im2col':0}
for k in g64:
    r=(rel(g32[k],g64[k]),rel(cl[k],g64[k]),rel(ci[k],g64[k]))
    for n,v in zip(worst,r): worst[n]=max(worst[n],v)
    print(f"{k:40s} torch32 {r[0]:.2e}  convlab-auto {r[1]:.2e}  convlab-im2col {r[2]:.2e}")
print('worst',worst)
