using ConvLab.NN;
using ConvLab.NN.Functional;

namespace ConvLab.Models;

/// <summary>
/// YOLOv1's detection head (Redmon et al., 2016): flattens an (N, inChannels, S, S) feature map, a fully connected layer
/// to <c>hidden</c> units with LeakyReLU(0.1) and dropout 0.5, then a linear layer to S·S·(5B + C), returned
/// as (N, S, S, 5B + C): per cell B boxes (x, y, w, h, confidence) followed by C class scores. Keys <c>fc.1</c>, <c>fc.4</c>.
/// The paper's configuration (1024 channels, S=7, B=2, C=20, 4096 hidden) has 211,547,582 parameters.
/// </summary>
public sealed class YoloV1Head : Module
{
    /// <summary>Creates the head for an S x S grid with B boxes per cell and C classes.</summary>
    public YoloV1Head(int S = 7, int B = 2, int C = 20, int inChannels = 1024, int hidden = 4096, Generator? generator = null)
    {
        if (S < 1 || B < 1 || C < 1 || inChannels < 1 || hidden < 1)
            throw new ArgumentException($"YoloV1Head: S ({S}), B ({B}), C ({C}), in_channels ({inChannels}) and hidden ({hidden}) must be positive");
        GridSize = S; Boxes = B; Classes = C; InChannels = inChannels;
        Fc = RegisterModule("fc", new Sequential(
            new Flatten(),
            new Linear(inChannels * S * S, hidden, generator: generator), new LeakyReLU(0.1), new Dropout(0.5, generator),
            new Linear(hidden, S * S * (5 * B + C), generator: generator)));
    }

    /// <summary>Grid size S.</summary>
    public int GridSize { get; }
    /// <summary>Boxes per cell B.</summary>
    public int Boxes { get; }
    /// <summary>Classes C.</summary>
    public int Classes { get; }
    /// <summary>Channels of the expected feature map.</summary>
    public int InChannels { get; }
    /// <summary>The fully connected layers.</summary>
    public Sequential Fc { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        if (input.Rank != 4 || input.Shape[1] != InChannels || input.Shape[2] != GridSize || input.Shape[3] != GridSize)
            throw new ArgumentException($"YoloV1Head: expected input (N, {InChannels}, {GridSize}, {GridSize}), got {ShapeUtil.Format(input.Shape)}");
        return Fc.Call(input).Reshape(input.Shape[0], GridSize, GridSize, 5 * Boxes + Classes);
    }
}
