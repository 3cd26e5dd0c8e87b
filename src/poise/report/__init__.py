"""Reports built from the store: figures now, HTML and Markdown reports next."""

from ._natural_plots import f_statistics_figure, heatmap_figure, position_bias_figure, save_natural_plots

__all__ = ["f_statistics_figure", "heatmap_figure", "position_bias_figure", "save_natural_plots"]
