namespace ConvLab.Detection;
/// <summary>tmp</summary>
/// <param name="Map50">m</param>
public sealed record DetectionEvaluation(double Map50);
