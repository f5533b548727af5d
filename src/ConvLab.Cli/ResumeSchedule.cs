namespace ConvLab.Cli;

/// <summary>
/// What <c>--epochs</c> means with <c>--resume</c> when the run has a cosine schedule. The schedule's length (T_max) is part
/// of the run: PyTorch's <c>load_state_dict</c> restores a scheduler's <c>T_max</c>, so a resumed run continues the original
/// schedule. Fewer epochs stop that schedule early (said in the output); more would run past T_max, where the cosine has
/// reached its floor of 0 and climbs again, so they are refused. Without a schedule any total is fine.
/// </summary>
internal static class ResumeSchedule
{
    /// <summary>
    /// The epochs to train and the cosine schedule's T_max for a resumed run: <paramref name="savedScheduleEpochs"/> (null in
    /// checkpoints written before it was recorded: <paramref name="savedEpochs"/>), and a note for the user, or null.
    /// </summary>
    public static (int Epochs, int ScheduleEpochs, string? Note) Plan(string verb, int savedEpochs, int? savedScheduleEpochs, int? epochs, bool cosine)
    {
        if (epochs is < 1) throw new ArgumentException($"{verb}: --epochs must be at least 1, got {epochs}");
        int tMax = savedScheduleEpochs ?? savedEpochs, total = epochs ?? savedEpochs;
        if (!cosine || total == tMax) return (total, tMax, null);
        if (total > tMax)
            throw new ArgumentException($"{verb}: --epochs {total} with --resume would run past this run's cosine schedule, which spans its planned " +
                $"{tMax} epochs (T_max={tMax}) and reaches a learning rate of 0 there; resume with --epochs {tMax} or fewer, or start a new run " +
                "from its weights (--weights RUN)");
        return (total, tMax, $"schedule: continuing the original cosine schedule over {tMax} epochs (T_max={tMax}, restored from the checkpoint as " +
            $"PyTorch's load_state_dict does); --epochs {total} stops it after epoch {total}");
    }
}
