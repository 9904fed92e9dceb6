"""placeholder"""
def to_cytoscape(graph):
    raise NotImplementedError
