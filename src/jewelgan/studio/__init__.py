"""jewelgan.studio"""
