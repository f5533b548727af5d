using System.CommandLine;
using ConvLab.Cli;

var root = new RootCommand("ConvLab: convolutional neural networks in pure C#.");
root.Subcommands.Add(CheckReferenceCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(EvaluateCommand.Create());
root.Subcommands.Add(PredictCommand.Create());
root.Subcommands.Add(CompareCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(SummaryCommand.Create());
root.Subcommands.Add(RfCommand.Create());
root.Subcommands.Add(MemoryCommand.Create());
root.Subcommands.Add(ModelsCommand.Create());
root.Subcommands.Add(ExperimentCommand.Create());
root.SetAction(_ => TrainCommand.RunDefault());
return root.Parse(args).Invoke();
