using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Tests;

/// <summary>
/// The network behind ../shared/interop/tiny_unet.*, rebuilt from its state-dict shapes and the ops of
/// tiny_unet.opset17.onnx. It is a fixture (made to exercise skip concat, transposed conv, reflect padding and both
/// resize modes in one small graph, including a scale-1 nearest resize that is the identity), not an architecture a
/// user would pick, so it lives with the tests rather than in the zoo.
/// </summary>
/// <remarks>
/// What the ONNX graph pins down beyond the shapes: <c>mid</c> is a Pad(reflect, 1) inside the module followed by an
/// unpadded Conv (so <c>padding_mode='reflect'</c>); the nearest Resize has scales [1,1,1,1] with asymmetric/floor
/// (<c>scale_factor=1</c>); the average pool is 2x2/2 without padding; the bilinear Resize takes sizes from the
/// decoder's shape with half_pixel coordinates (<c>align_corners=False</c>); ReLUs after <c>mid</c> and <c>dec</c>
/// are functional (no key), those of the encoders are Sequential index 2.
/// </remarks>
internal sealed class PthTinyUnet : Module
{
    private readonly Sequential _enc1, _enc2;
    private readonly Conv2d _mid, _dec, _head;
    private readonly ConvTranspose2d _up;

    public PthTinyUnet(Generator? g = null)
    {
        _enc1 = RegisterModule("enc1", new Sequential(new Conv2d(3, 8, 3, padding: 1, generator: g), new BatchNorm2d(8), new ReLU()));
        _enc2 = RegisterModule("enc2", new Sequential(new Conv2d(8, 16, 3, stride: 2, padding: 1, generator: g), new BatchNorm2d(16), new ReLU()));
        _mid = RegisterModule("mid", new Conv2d(16, 16, 3, padding: 1, paddingMode: "reflect", generator: g));
        _up = RegisterModule("up", new ConvTranspose2d(16, 8, 4, stride: 2, padding: 1, generator: g));
        _dec = RegisterModule("dec", new Conv2d(16, 8, 3, padding: 1, generator: g));
        _head = RegisterModule("head", new Conv2d(8, 2, 1, generator: g));
    }

    public override Tensor Forward(Tensor input)
    {
        var e1 = _enc1.Call(input);
        var e2 = _enc2.Call(e1);
        var m = F.Relu(_mid.Call(e2)).Add(F.Interpolate(e2, scaleFactor: [1.0], mode: "nearest"));
        var d = F.Relu(_dec.Call(Tensor.Cat([_up.Call(m), e1], 1)));
        var pooled = F.AvgPool2d(d, [2]);
        return _head.Call(d.Add(F.Interpolate(pooled, size: [d.Shape[2], d.Shape[3]], mode: "bilinear", alignCorners: false)));
    }
}
