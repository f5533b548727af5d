import torch, torchvision
from ref import load_st, w, b
rel=lambda x,r: float((x-r).abs().max()/r.abs().max())
p=load_st('probe_auto.safetensors')
def mk(dtype):
    m=torchvision.models.resnet18(num_classes=10); m.conv1=torch.nn.Conv2d(3,64,3,1,1,bias=False); m.maxpool=torch.nn.Identity()
    m.load_state_dict(w); m=m.to(dtype); m.train(); return m
m64=mk(torch.float64); m32=mk(torch.float32)
with torch.no_grad():
    def upto(m,dtype):
        h=m.relu(m.bn1(m.conv1(b['x'].to(dtype)))); h=m.layer1(h); h=m.layer2(h); return m.layer3[0](h)
    a64=upto(m64,torch.float64); a32=upto(m32,torch.float32).double()
ac=p['a30'].double()
def grads(a):
    m=mk(torch.float64); c=a.clone().requires_grad_()
    lg=m.fc(torch.flatten(m.avgpool(m.layer4(m.layer3[1](c))),1)); torch.nn.functional.cross_entropy(lg,b['y']).backward()
    return {k:v.grad.clone() for k,v in m.named_parameters() if k.startswith('layer3.1') or k.startswith('layer4.0.conv1')}
g64=grads(a64); g32=grads(a32); gc=grads(ac)
for k in g64: print(f"{k:30s} from-torch32-a30 {rel(g32[k],g64[k]):.2e} from-convlab-a30 {rel(gc[k],g64[k]):.2e}")
d=(ac-a64).abs(); print('convlab a30 err max',float(d.max()),'at',d.argmax().item(),'a64 there',float(a64.flatten()[d.argmax()]))
print('zeros a64',int((a64==0).sum()),'convlab',int((ac==0).sum()),'torch32',int((a32==0).sum()))
print('a64 ==0 but convlab>0',int(((a64==0)&(ac>0)).sum()),' a64>0 convlab==0',int(((a64>0)&(ac==0)).sum()))
print('a64 ==0 but t32>0',int(((a64==0)&(a32>0)).sum()),' a64>0 t32==0',int(((a64>0)&(a32==0)).sum()))
for name,a in [('convlab',ac),('torch32',a32)]:
    e=(a-a64); nz=a64>0
    print(name,'rms',float(e.pow(2).mean().sqrt()),'mean',float(e.mean()),'max per-channel |mean err|',float(e.mean(dim=(0,2,3)).abs().max()), 'rel rms on nonzero', float((e[nz]/a64[nz]).pow(2).mean().sqrt()))
# per stage
with torch.no_grad():
    h64=m64.relu(m64.bn1(m64.conv1(b['x'].double())))
    h32=m32.relu(m32.bn1(m32.conv1(b['x'])))
for name,key,f in [('layer1','a1',lambda m,h: m.layer1(h)),]:
    pass
c1=p['a1'].double(); c2=p['a2'].double()
with torch.no_grad():
    l1_64=m64.layer1(h64); l1_32=m32.layer1(h32).double(); l2_64=m64.layer2(l1_64); l2_32=m32.layer2(m32.layer1(h32)).double()
for nm,c,r64,r32 in [('layer1',c1,l1_64,l1_32),('layer2',c2,l2_64,l2_32)]:
    print(nm,'rms convlab',float((c-r64).pow(2).mean().sqrt()),'torch32',float((r32-r64).pow(2).mean().sqrt()),'mean convlab',float((c-r64).mean()),'torch32',float((r32-r64).mean()))
torch.manual_seed(0)
for trial in range(8):
    noise=torch.randn_like(a64)*1.5e-6*(a64>0)
    gn=grads((a64+noise).clamp_min(0))
    print('trial',trial,'max rel over layer3.1 params',max(rel(gn[k],g64[k]) for k in g64))
