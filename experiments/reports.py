"""placeholder"""
def write_report(result, path):
    raise NotImplementedError
