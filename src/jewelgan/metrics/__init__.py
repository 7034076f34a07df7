"""jewelgan.metrics"""
