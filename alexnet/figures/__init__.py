"""The paper's figures as PNG files: conv1 kernels (Figure 3), top-5 predictions and nearest
neighbours in the last hidden layer (Figure 4), learning curves, and Figure 1's line chart."""
